"""Pure checks on a persona's reply text, shared by the evaluation probes and the curation queue.

- `leaked_label(raw, persona)`: the speaker label a raw output leaks ("TIM:" opening it, or a line
  starting "User:"), or None.
- `estimated_tokens(text)`: the project's one estimate (`bot.engine.tokens`), with words as a lower
  bound for short-word text.
- `looks_runaway(text, max_tokens)`: the reply is as long as the persona's token limit allows, so it
  most likely ran into `max_tokens` instead of ending on its own.

No torch, no discord: the bot, the store and the trainer all import this.
"""
from __future__ import annotations

import re

from bot.engine.engine import GENERIC_USER_LABELS
from bot.engine.tokens import estimate_text_tokens
from bot.persona.spec import PersonaSpec


def leaked_label(raw: str, persona: PersonaSpec, extra_member_labels: list[str] | None = None) -> str | None:
    """The speaker label the raw output leaks ("TIM:" opening it, or a line starting "User:"), or None."""
    own = [l for l in persona.labels if l.strip()]
    members = [persona.user_label, *GENERIC_USER_LABELS, *(extra_member_labels or [])]
    decor = r"[ \t]*(?:\*\*|__|\*|_)?[ \t]*"
    alternation = "|".join(re.escape(l) for l in sorted({*own, *members}, key=len, reverse=True) if l)
    m = re.search(rf"(?im)^{decor}(?:{alternation}){decor}:", raw.lstrip())
    return m.group(0).strip(" \t*_") if m else None


def estimated_tokens(text: str) -> int:
    return max(len(text.split()), estimate_text_tokens(text))


def looks_runaway(text: str, max_tokens: int) -> bool:
    return estimated_tokens(text) >= max_tokens
