"""Owner identification shared by importers: by sender id or an exact alias, never by name substring.

`match_owner` compares each wanted token with the participants' ids and, case-insensitively but
whole, with their display names. "Ann" never matches "Anna" or "Joanna"; that is the point.
"""
from __future__ import annotations

from trainer.importers.base import ParseResult, Problem


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def match_owner(result: ParseResult, wanted: tuple[str, ...], file: str, *, id_forms=None) -> set[str]:
    """Sender ids of the owner among `result.participants`; unmatched tokens are reported as problems.

    `id_forms(pid)` may give other spellings of an id (Telegram: "user42" is also "42").
    """
    found: set[str] = set()
    for token in wanted:
        t = token.strip()
        if not t:
            continue
        hits = set()
        for pid, name in result.participants.items():
            forms = {pid, *(id_forms(pid) if id_forms else ())}
            if t in forms or _norm(t) == _norm(name or ""):
                hits.add(pid)
        if not hits:
            result.problems.append(Problem(file, "options", f"owner {t!r} matches no participant id or name"))
        found |= hits
    return found
