"""How a review item reads: the text of the Discord review message and of the terminal walk.

Names are display names; raw mentions (`<@123>`) in stored text are shown as "@someone", so no
user id reaches the curator. The Discord text stays within the 2000-character message limit: long
turns are shortened and the oldest context goes first.
"""
from __future__ import annotations

import re

from bot.store.curation import ReviewItem

LIMIT = 1900                 # under Discord's 2000, with room for the caller's own line
_TURN_CHARS = 300
_REPLY_CHARS = 900
_MENTION = re.compile(r"<@[!&]?\d+>")


def _clean(text: str, limit: int) -> str:
    text = _MENTION.sub("@someone", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text.splitlines() or [""]))


def signals_line(item: ReviewItem) -> str:
    s = item.signals
    parts = [f"👍 {s.thumbs_up}", f"👎 {s.thumbs_down}", f"{s.length} chars"]
    parts += [f"⚠️ {flag}" for flag in s.flags]
    return " · ".join(parts)


def when(item: ReviewItem) -> str:
    return item.created_at[:16].replace("T", " ") + " UTC"


def discord_text(item: ReviewItem, *, persona: str, where: str, pending: int | None = None) -> str:
    """The review message: header, context, the reply, the signals and (once decided) the status."""
    header = f"**Curation · {persona}** · {where} · {when(item)} · item {item.id}"
    if pending is not None:
        header += f" · {pending} pending"
    reply = f"**{persona} replied:**\n{_quote(_clean(item.reply, _REPLY_CHARS))}"
    tail = [f"**Signals:** {signals_line(item)}"]
    if item.status != "pending":
        tail.append(f"**Status:** {item.status}" + (f" → {_clean(item.correction or '', 300)}" if item.status == "corrected" else ""))
    context = [f"> **{_clean(t.speaker, 40)}:** {_clean(t.text, _TURN_CHARS).replace(chr(10), chr(10) + '> ')}" for t in item.context]
    fixed = len(header) + len(reply) + sum(len(t) + 1 for t in tail) + 40
    while context and fixed + sum(len(c) + 1 for c in context) > LIMIT:
        context.pop(0)
    body = [header, "**Context:**" if context else "**Context:** (none stored)", *context, reply, *tail]
    return "\n".join(body)[:LIMIT]


def plain_lines(item: ReviewItem, *, persona: str) -> list[tuple[str, str]]:
    """(speaker, text) pairs for the terminal: the context, then the reply."""
    lines = [(t.speaker, _MENTION.sub("@someone", t.text)) for t in item.context]
    lines.append((f"{persona} (reply)", _MENTION.sub("@someone", item.reply)))
    return lines
