"""Keeping Python's cyclic garbage collector out of the way of bulk, CPU-bound steps.

Parsing an export or building a dataset allocates millions of small objects (messages, tuples,
dicts) that stay alive until the step ends and form no reference cycles. Each allocation burst
makes the collector run, and its full collections rescan everything allocated so far: at 270k
messages that is about a tenth of the CPU time, for nothing to collect.

- `gc_paused()` turns the collector off for a synchronous part of such a step and back on (if it
  was on) afterwards, whatever happens; anything cyclic created meanwhile is collected later as
  usual. Use it only around synchronous code, so no other coroutine runs while the collector is off.
- `gc_long_lived()` goes around a whole step, awaits included (an import: parse, then the inserts;
  a build). Within it, what exists when a `gc_paused()` part ends is frozen (`gc.freeze()`): the
  objects the part made live on (the parsed messages, the build's threads and examples), and the
  collections that the step's later allocations set off would otherwise rescan them up to three
  times (young, middle and old generation: ~0.7 CPU s of a 270k-message import + build). The
  collector stays on; objects made afterwards are collected as usual, frozen ones are still freed
  when their last reference goes. When the outermost step ends, everything is unfrozen (back to
  the oldest generation, where a cycle among them is collected as usual). In a process that
  already froze objects of its own (the bot's backend pool), nothing is frozen here, since the
  unfreeze at the end would take its objects out of the permanent generation too.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

_depth = 0                  # nested or concurrent gc_long_lived() steps in progress
_freezing = False           # whether gc_paused() freezes on exit (see gc_long_lived)


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freezing:
            gc.freeze()
        if enabled:
            gc.enable()


@contextmanager
def gc_long_lived() -> Iterator[None]:
    global _depth, _freezing
    if _depth == 0:
        _freezing = gc.get_freeze_count() == 0
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _freezing:
            _freezing = False
            gc.unfreeze()
