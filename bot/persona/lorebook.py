"""A card's lorebook (`character_book`), parsed into plain frozen dataclasses.

The fields are those of the Character Card V2/V3 specs. The book stays verbatim in the persona's
`card.json`; the loader parses it from there into `PersonaSpec.lore`, and the engine
(`bot.engine.lorebook.select_lore`) decides which entries go into a prompt.

Contract: `parse_lorebook(obj, where)` returns a `Lorebook` or raises `LorebookError` naming the
field (`data.character_book.entries[2].keys: expected a list of strings`). Optional fields missing
or null take the spec's defaults; a regex key (V3 `use_regex`) that does not compile is an error.
V3 decorator lines (`@@depth 4`, ...) at the start of an entry's content are taken off it; of them,
`@@activate` makes the entry constant and `@@dont_activate` disables it, the others are ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


MAX_REGEX_CHARS = 200
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,)")


class LorebookError(ValueError):
    """A lorebook field with the wrong type or value; the message names it."""


@dataclass(frozen=True)
class LoreEntry:
    keys: tuple[str, ...]
    content: str
    enabled: bool = True
    insertion_order: float = 100
    case_sensitive: bool = False
    selective: bool = False
    secondary_keys: tuple[str, ...] = ()
    constant: bool = False
    position: str = "after_char"      # 'before_char' | 'after_char'
    priority: float | None = None     # lower is dropped first when over budget
    use_regex: bool = False
    name: str = ""


@dataclass(frozen=True)
class Lorebook:
    entries: tuple[LoreEntry, ...]
    name: str = ""
    scan_depth: int | None = None     # recent messages scanned for keys
    token_budget: int | None = None   # most tokens of lore in one prompt
    recursive_scanning: bool = False  # activated entries' content may trigger further entries


def _get(obj: dict, key: str, kind, where: str, default):
    value = obj.get(key)
    if value is None:
        return default
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise LorebookError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)} (got {type(value).__name__})")
    return int(value) if kind is int else value


def _strings(obj: dict, key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LorebookError(f"{where}.{key}: expected a list of strings")
    return tuple(v for v in value if v.strip())


def _decorators(content: str) -> tuple[str, set[str]]:
    """V3 decorators: `@@name [args]` lines at the start of an entry's content (never sent to the model)."""
    lines = content.split("\n")
    names = set()
    while lines and lines[0].lstrip().startswith("@@"):
        names.add(lines.pop(0).strip().lstrip("@").split(" ", 1)[0].lower())
    return "\n".join(lines), names


def parse_lorebook(obj: object, where: str = "character_book") -> Lorebook:
    if not isinstance(obj, dict):
        raise LorebookError(f"{where}: expected an object (got {type(obj).__name__})")
    raw_entries = obj.get("entries")
    if raw_entries is None:
        raw_entries = []
    if not isinstance(raw_entries, list):
        raise LorebookError(f"{where}.entries: expected a list (got {type(raw_entries).__name__})")
    entries = []
    for i, raw in enumerate(raw_entries):
        at = f"{where}.entries[{i}]"
        if not isinstance(raw, dict):
            raise LorebookError(f"{at}: expected an object (got {type(raw).__name__})")
        position = _get(raw, "position", str, at, "after_char")
        if position not in ("before_char", "after_char"):
            raise LorebookError(f"{at}.position: expected 'before_char' or 'after_char' (got {position!r})")
        content, decorators = _decorators(_get(raw, "content", str, at, ""))
        entry = LoreEntry(
            keys=_strings(raw, "keys", at), content=content,
            enabled=_get(raw, "enabled", bool, at, True) and "dont_activate" not in decorators,
            insertion_order=_get(raw, "insertion_order", float, at, 100),
            case_sensitive=_get(raw, "case_sensitive", bool, at, False), selective=_get(raw, "selective", bool, at, False),
            secondary_keys=_strings(raw, "secondary_keys", at),
            constant=_get(raw, "constant", bool, at, False) or "activate" in decorators,
            position=position, priority=_get(raw, "priority", float, at, None),
            use_regex=_get(raw, "use_regex", bool, at, False), name=_get(raw, "name", str, at, "") or _get(raw, "comment", str, at, ""),
        )
        if entry.use_regex:
            for key in (*entry.keys, *entry.secondary_keys):
                try:
                    re.compile(key)
                except re.error as exc:
                    raise LorebookError(f"{at}.keys: {key!r} is not a valid regular expression ({exc})") from None
                # Keys run against members' messages on the event loop: refuse the patterns that
                # backtrack exponentially (a repeated group that itself repeats), and long ones.
                if len(key) > MAX_REGEX_CHARS or _NESTED_QUANTIFIER.search(key):
                    raise LorebookError(f"{at}.keys: {key[:60]!r}: regular expressions with a repeated group that "
                                        f"repeats, or over {MAX_REGEX_CHARS} characters, are refused (they can "
                                        "take exponential time)")
        entries.append(entry)
    scan_depth = _get(obj, "scan_depth", int, where, None)
    budget = _get(obj, "token_budget", int, where, None)
    if scan_depth is not None and scan_depth < 0:
        raise LorebookError(f"{where}.scan_depth: expected a number >= 0 (got {scan_depth})")
    if budget is not None and budget < 0:
        raise LorebookError(f"{where}.token_budget: expected a number >= 0 (got {budget})")
    return Lorebook(tuple(entries), name=_get(obj, "name", str, where, ""), scan_depth=scan_depth, token_budget=budget,
                    recursive_scanning=_get(obj, "recursive_scanning", bool, where, False))
