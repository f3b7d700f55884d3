"""Chat messages read back from the platform → the engine's `Turn`s.

The front end converts each platform message into a `ChatMessage` (who said it, as what kind of
speaker) and calls `to_turns`. The rules:
- the conversation restarts after the newest reset notice (/reset), so earlier messages are dropped;
- the bot's own notices and system messages (command responses, "busy") are not turns;
- the bot account's messages and the persona's own webhook posts are the persona's turns;
- other personas' posts in a shared channel are other speakers, named by their display name;
- members, whether or not they opted in to logging, are context: this list lives only in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from bot.conversations.notices import is_notice, is_reset
from bot.engine.types import Turn
from bot.persona.spec import PersonaSpec

Speaker = Literal["member", "self", "persona", "bot", "system"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: int
    author_id: str
    author_name: str
    content: str
    speaker: Speaker = "member"
    persona: str | None = None       # for speaker "persona": which persona posted it


def to_turns(messages: Iterable[ChatMessage], persona: PersonaSpec, personas: dict[str, PersonaSpec] | None = None) -> list[Turn]:
    """`messages` oldest first → turns oldest first, for `persona` to answer."""
    ordered = list(messages)
    start = 0
    for i in range(len(ordered) - 1, -1, -1):
        m = ordered[i]
        if m.speaker in ("self", "system") and is_reset(m.content):
            start = i + 1
            break
    turns: list[Turn] = []
    for m in ordered[start:]:
        content = m.content.strip()
        if not content or m.speaker == "system":
            continue
        if m.speaker == "self":
            if is_notice(content):
                continue
            turns.append(Turn(m.author_id, persona.display_name, content, from_persona=True))
        elif m.speaker == "persona":
            if m.persona == persona.name:
                turns.append(Turn(m.author_id, persona.display_name, content, from_persona=True))
            else:
                other = (personas or {}).get(m.persona or "")
                name = other.display_name if other else m.author_name
                turns.append(Turn(f"persona:{m.persona or m.author_id}", name, content))
        else:
            turns.append(Turn(m.author_id, m.author_name, content))
    return turns
