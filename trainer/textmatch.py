"""Small text-matching helpers shared by importers and dataset building.

- `literal_trie(words)`: a regex for exactly these literal words, shaped as a trie (fast to scan).
- `fold(text)`: the caseless, Unicode-normalised form used to compare names: NFKD + casefold, with
  the dotted/dotless i of Turkish and Azerbaijani merged into "i" (so "İlker", "ILKER", "ılker" and
  "ilker" all fold to "ilker") and "ß"/"ẞ" folded to "ss" ("Straße" = "STRASSE"). Diacritics stay
  as separate combining marks, so "José" folds to "jose" + U+0301.
- `FoldedText(text)`: the folded text with, for every folded character, the index of the original
  character it came from, so a match found in the folded text maps back to a span of the original.
- `WORD_MARKS`: a character class of combining marks, to use with `\\w` for word boundaries in
  folded text (a boundary must not fall between a letter and its accent or vowel sign).
"""
from __future__ import annotations

import re
import unicodedata

# Combining diacritics, Devanagari/Bengali signs, Arabic harakat, Thai/Hebrew marks: parts of a word.
WORD_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0610-\u061a\u064b-\u065f\u0670"
              "\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963"
              "\u0981-\u0983\u09bc-\u09d7\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f")
_TURKISH = str.maketrans({"\u0131": "i", "\u0307": None})      # dotless ı -> i; the dot of İ's fold (i + U+0307) dropped


def fold(text: str) -> str:
    """Caseless, compatibility-normalised form of `text` (see the module docstring)."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    # translate() looks every character up; most texts (emoji, accents) have neither character.
    return folded.translate(_TURKISH) if "\u0131" in folded or "\u0307" in folded else folded


def _fold_char(ch: str) -> str:
    return ch.lower() if ch.isascii() else fold(ch)


class FoldedText:
    """`text` folded character by character, with `origin[i]` = index in `text` of folded char i.

    Folding is per character (NFKD decomposes and casefold folds one character at a time), so the
    concatenation equals `fold(text)` up to the canonical order of stacked combining marks."""

    __slots__ = ("text", "folded", "origin")

    def __init__(self, text: str):
        self.text = text
        if text.isascii():
            self.folded = text.lower()
            self.origin = None          # identity: same length, same positions
            return
        pieces: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            f = _fold_char(ch)
            pieces.append(f)
            origin.extend([i] * len(f))
        self.folded = "".join(pieces)
        self.origin = origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that folded[start:end] came from (whole characters, and any
        combining marks that follow the last one)."""
        if self.origin is None:
            return start, end
        a = self.origin[start]
        b = self.origin[end - 1] + 1
        while b < len(self.text) and unicodedata.combining(self.text[b]):
            b += 1
        return a, b

    def sub(self, pattern: re.Pattern, replace) -> tuple[str, int]:
        """Replace every match of `pattern` in the folded text by `replace(match, original_substring)`
        in the original text (a None from `replace` keeps it); returns (new text, replacements made)."""
        out: list[str] = []
        at = 0
        n = 0
        for m in pattern.finditer(self.folded):
            a, b = self.span(m.start(), m.end())
            if a < at:
                continue
            new = replace(m, self.text[a:b])
            if new is None:
                continue
            out.append(self.text[at:a])
            out.append(new)
            at = b
            n += 1
        if not n:
            return self.text, 0
        out.append(self.text[at:])
        return "".join(out), n


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
