"""Pausing Python's cyclic garbage collector around bulk, CPU-bound steps.

Parsing an export or building a dataset allocates millions of small objects (messages, tuples,
dicts) that stay alive until the step ends and form no reference cycles. Each allocation burst
makes the collector run, and its full collections rescan everything allocated so far: at 270k
messages that is about a tenth of the CPU time, for nothing to collect. `gc_paused()` turns the
collector off for such a step and back on (if it was on) afterwards, whatever happens; anything
cyclic created meanwhile is collected later as usual. Use it only around synchronous code, so no
other coroutine runs while the collector is off.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
