"""Stop strings in streamed text: the one hold-back rule, shared by the engine and the local backend.

While text streams, its end may be the beginning of a stop string ("...\\nUs" before "User:"), so
that much must be held back until the next piece shows whether the stop string follows. Showing
it early would put text on screen that later has to be taken back.
"""
from __future__ import annotations

from typing import Iterable


def held_back(text: str, stops: Iterable[str]) -> int:
    """Length of the longest end of `text` that is a proper beginning of one of `stops`."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best
