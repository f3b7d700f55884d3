"""Day-first / month-first inference for WhatsApp timestamps.

WhatsApp writes dates in the phone's locale and never says which. Dates are grouped by their
separator ('.', '/', '-') because one file may mix formats (phones change locale; a dotted date is
a different locale from a slashed one). Within a group: a 4-digit first field means year-first;
a first field above 12 means day-first; a second field above 12 means month-first; when every date
is ambiguous the order that keeps the chat chronological wins, and a tie goes to day-first (the
majority of the world's locales). `--date-order` overrides all of this.
"""
from __future__ import annotations

from datetime import date

ORDERS = ("dmy", "mdy", "ymd")


def split_date(text: str) -> tuple[str, tuple[int, int, int], bool]:
    """('/', (a, b, c), first_is_4_digits) for '12/31/23', '2023-12-31', '31. 12. 23'."""
    text = text.replace("\u200e", "").replace("\u200f", "")      # Arabic-locale dates carry RLMs: "15\u200f/1\u200f/2023"
    sep = next((c for c in text if c in "./-"), "/")
    parts = [p.strip() for p in text.strip(". ").split(sep)]
    a, b, c = (int(p) for p in parts[:3])
    return sep, (a, b, c), len(parts[0]) == 4


def _year(y: int) -> int:
    return y + 2000 if y < 100 else y


def to_date(fields: tuple[int, int, int], order: str) -> date:
    a, b, c = fields
    if order == "ymd":
        return date(_year(a), b, c)
    if order == "mdy":
        return date(_year(c), a, b)
    return date(_year(c), b, a)


def _inversions(fields: list[tuple[int, int, int]], order: str) -> int | None:
    """How often the chat goes back in time under `order`; None when some date is impossible."""
    count = 0
    previous = None
    for f in fields:
        try:
            d = to_date(f, order)
        except ValueError:
            return None
        if previous is not None and d < previous:
            count += 1
        previous = d
    return count


def infer_order(fields: list[tuple[int, int, int]], year_first: bool) -> str:
    """The date order for one separator group, from the dates in file order."""
    if year_first:
        return "ymd"
    first_big = any(a > 12 for a, _, _ in fields)
    second_big = any(b > 12 for _, b, _ in fields)
    if first_big and not second_big:
        return "dmy"
    if second_big and not first_big:
        return "mdy"
    dmy, mdy = _inversions(fields, "dmy"), _inversions(fields, "mdy")
    if dmy is None and mdy is not None:
        return "mdy"
    if mdy is not None and dmy is not None and mdy < dmy:
        return "mdy"
    return "dmy"
