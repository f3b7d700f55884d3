"""Small text-matching helpers shared by importers and dataset building."""
from __future__ import annotations

import re


def literal_trie(words: list[str] | set[str]) -> str:
    """A regex matching exactly the given literal words, shaped as a trie ("ana", "anna" -> "an(?:a|na)").

    Python's regex engine scans a trie-shaped pattern much faster than the plain alternation
    "ana|anna" (it does not share prefixes itself); what matches is the same."""
    groups: dict[str, list[str]] = {}
    optional = False
    for w in sorted(words):
        if w:
            groups.setdefault(w[0], []).append(w[1:])
        else:
            optional = True
    alts = [re.escape(c) + literal_trie(rest) for c, rest in sorted(groups.items())]
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")" if alts else ""
    return f"(?:{body})?" if optional and body else body
