"""Card macros: `{{char}}` and `{{user}}` (and the V1-era `<BOT>` / `<USER>`), case-insensitive.

`{{char}}` is resolved once, when a card is imported, to the persona's display name; `{{user}}`
stays in the persona's texts and is resolved when a reply is generated, to the display name of
the member being answered. `resolve(text, char=..., user=...)` replaces only the macros it is
given a value for, so the two steps compose.
"""
from __future__ import annotations

import re

_CHAR = re.compile(r"\{\{\s*char\s*\}\}|<BOT>", re.IGNORECASE)
_USER = re.compile(r"\{\{\s*user\s*\}\}|<USER>", re.IGNORECASE)

#: How `{{user}}` is written in persona texts after import (one spelling, for the serving step).
USER_MACRO = "{{user}}"


def resolve(text: str, *, char: str | None = None, user: str | None = None) -> str:
    if not text:
        return text
    if char is not None:
        text = _CHAR.sub(lambda _: char, text)
    text = _USER.sub(lambda _: USER_MACRO if user is None else user, text)
    return text


def has_user_macro(text: str) -> bool:
    return bool(text) and _USER.search(text) is not None
