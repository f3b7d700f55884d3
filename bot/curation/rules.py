"""`personabot curate auto` rules: bulk approval of pending items by their signals.

- `thumbs-up`: approve items with at least one 👍 and no 👎;
- `no-thumbs-down`: approve items without a 👎;
- `all`: approve every pending item.

No rule approves an item the checks flag (backend error, label leak, runaway length) or rejects
anything: those stay pending for a person to look at, and `auto` reports them as held back.
"""
from __future__ import annotations

from typing import Iterable

from bot.store.curation import ReviewItem

RULES = ("thumbs-up", "no-thumbs-down", "all")


def matches(item: ReviewItem, rule: str) -> bool:
    s = item.signals
    if rule == "thumbs-up":
        return s.thumbs_up > 0 and s.thumbs_down == 0
    if rule == "no-thumbs-down":
        return s.thumbs_down == 0
    if rule == "all":
        return True
    raise ValueError(f"unknown rule {rule!r} (expected one of {', '.join(RULES)})")


def plan(items: Iterable[ReviewItem], rule: str) -> tuple[list[ReviewItem], list[ReviewItem]]:
    """(to approve, held back because a check flags them) among the items the rule matches."""
    approve, held = [], []
    for item in items:
        if item.status != "pending" or not matches(item, rule):
            continue
        (held if item.signals.flags else approve).append(item)
    return approve, held
