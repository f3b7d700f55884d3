"""Split a reply into chat messages of at most `limit` characters.

Contract:
- every part is at most `limit` long, measured in UTF-16 code units (what Discord counts), so a
  send can never fail with "content too long" (50035);
- a cut falls on a paragraph break, else a line break, else a space: words are never split, except
  a single "word" longer than a whole message (a pasted blob), which is cut hard;
- a cut inside a fenced code block closes the fence at the end of the part and reopens it, with
  the same language tag, at the start of the next, so each message renders on its own;
- joining the parts gives back the text, less the whitespace at the cuts and the added fences.

The split of a text's first `limit` characters does not depend on what follows, so a streaming
reply's earlier parts stay fixed while the last one grows.
"""
from __future__ import annotations

DISCORD_LIMIT = 2000
FENCE = "```"
_CLOSE = "\n" + FENCE


def utf16_len(text: str) -> int:
    """Length as Discord counts it: characters outside the BMP (most emoji) count twice."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _prefix_fitting(text: str, budget: int) -> int:
    """The largest n such that utf16_len(text[:n]) <= budget."""
    if utf16_len(text[:budget]) <= budget:
        return min(len(text), budget)
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > budget:
            return i
    return len(text)


def _fence_state(text: str) -> str | None:
    """After `text`, the language tag of the open code block ("" for none given), or None if closed."""
    open_lang: str | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            if open_lang is None:
                open_lang = stripped[len(FENCE):].strip()
            elif stripped == FENCE or stripped.endswith(FENCE):
                open_lang = None
    return open_lang


def _cut_point(window: str) -> tuple[int, int]:
    """(end of this part, start of the next) inside `window`: the best whitespace to cut at."""
    half = len(window) // 2
    for sep in ("\n\n", "\n"):
        i = window.rfind(sep)
        if i > half:
            return i, i + len(sep)
    i = window.rfind(" ")
    if i > 0:
        return i, i + 1
    i = window.rfind("\n")  # a short first line beats a hard cut
    if i > 0:
        return i, i + 1
    return len(window), len(window)


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Parts of `text`, each at most `limit` UTF-16 units; [] for blank text."""
    if limit < 64:
        raise ValueError("limit too small to hold a reopened code fence")
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            parts.append(rest)
            break
        # Leave room to close a code block, in case the cut lands inside one.
        window = rest[: _prefix_fitting(rest, limit - len(_CLOSE))]
        end, start = _cut_point(window)
        head, tail = rest[:end].rstrip(), rest[start:].lstrip(" ")
        if not head:  # only whitespace before the cut: take a hard cut instead
            head, tail = window, rest[len(window):]
        lang = _fence_state(head)
        if lang is not None:
            if head.rstrip().split("\n")[-1].strip().startswith(FENCE):
                # The cut would leave an empty block ("```py" alone): move the opening line along.
                last_nl = head.rfind("\n")
                if last_nl > 0:
                    head, tail = head[:last_nl].rstrip(), rest[last_nl + 1:]
                    lang = _fence_state(head)
            if lang is not None:
                head += _CLOSE
                tail = f"{FENCE}{lang}\n{tail.lstrip(chr(10))}"
        parts.append(head)
        rest = tail if tail.strip() else ""
    return parts
