"""Which lorebook entries go into a prompt, within a token budget (SillyTavern's semantics).

`select_lore(book, recent, budget=..., count=...)` is pure: given the book, the texts of the
conversation (oldest first) and a token counter, it returns the lore to place before and after the
persona's system prompt (which holds the character's description).

- Scanned text: the last `book.scan_depth` messages (SillyTavern's default: 2); 0 scans nothing,
  so only constant entries apply.
- An enabled entry is activated when it is `constant`, or when one of its `keys` occurs in the
  scanned text (case-insensitive unless `case_sensitive`; a regular expression when V3's
  `use_regex`). A `selective` entry with `secondary_keys` also needs one of those to occur.
- With `recursive_scanning`, the content of activated entries is scanned too, until nothing new
  is activated.
- Budget: entries are admitted constant ones first, then by `priority` (else `insertion_order`),
  highest first; one that would overflow the budget is left out (and counted), a smaller one
  after it may still fit.
- Order in the prompt: lower `insertion_order` first; `position` (`before_char`/`after_char`)
  puts an entry before or after the system prompt, which holds the character's description.

`lore_budget(book, context_budget)` is the token budget the engine gives the lore: the book's own
`token_budget`, else a quarter of the persona's context budget (SillyTavern's default share),
never more than half of it so that the conversation keeps room.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from bot.persona.lorebook import LoreEntry, Lorebook

DEFAULT_SCAN_DEPTH = 2
DEFAULT_BUDGET_SHARE = 0.25
_MAX_RECURSION = 8


@dataclass(frozen=True)
class LoreSelection:
    before: str = ""                 # goes before the system prompt
    after: str = ""                  # goes after it
    entries: tuple[int, ...] = ()    # indices of the entries used, in prompt order
    over_budget: int = 0             # activated entries left out for lack of room

    @property
    def empty(self) -> bool:
        return not self.entries


def lore_budget(book: Lorebook, context_budget: int) -> int:
    cap = context_budget // 2
    if book.token_budget:
        return min(book.token_budget, cap)
    return int(context_budget * DEFAULT_BUDGET_SHARE)


def _occurs(key: str, text: str, folded: str, entry: LoreEntry) -> bool:
    if entry.use_regex:
        return re.search(key, text, 0 if entry.case_sensitive else re.IGNORECASE) is not None
    return key in text if entry.case_sensitive else key.casefold() in folded


def _activated(entry: LoreEntry, text: str, folded: str) -> bool:
    if not entry.enabled or not entry.content.strip():
        return False
    if entry.constant:
        return True
    if not any(_occurs(k, text, folded, entry) for k in entry.keys):
        return False
    if entry.selective and entry.secondary_keys:
        return any(_occurs(k, text, folded, entry) for k in entry.secondary_keys)
    return True


def select_lore(book: Lorebook, recent: Sequence[str], *, budget: int, count: Callable[[str], int]) -> LoreSelection:
    depth = DEFAULT_SCAN_DEPTH if book.scan_depth is None else book.scan_depth
    scanned = "\n".join(recent[-depth:]) if depth > 0 else ""
    active: list[int] = []
    text = scanned
    for _ in range(_MAX_RECURSION if book.recursive_scanning else 1):
        folded = text.casefold()     # once per pass, not once per key
        new = [i for i, e in enumerate(book.entries) if i not in active and _activated(e, text, folded)]
        if not new:
            break
        active += new
        text = "\n".join([scanned, *(book.entries[i].content for i in active)])

    def rank(i: int) -> tuple:
        e = book.entries[i]
        return (not e.constant, -(e.priority if e.priority is not None else e.insertion_order), i)

    chosen: list[int] = []
    spent = 0
    left_out = 0
    for i in sorted(active, key=rank):
        cost = count(book.entries[i].content.strip())
        if spent + cost > budget:
            left_out += 1
            continue
        chosen.append(i)
        spent += cost
    chosen.sort(key=lambda i: (book.entries[i].insertion_order, i))
    parts = {"before_char": [], "after_char": []}
    for i in chosen:
        parts[book.entries[i].position].append(book.entries[i].content.strip())
    return LoreSelection("\n".join(parts["before_char"]), "\n".join(parts["after_char"]), tuple(chosen), left_out)
