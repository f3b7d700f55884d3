"""Who wrote a chat message, as what kind of speaker: the one rule, for live and read-back messages alike.

The front end copies the few facts that matter out of a platform message (`MessageFacts`) and
calls `classify`, which returns the `HistoryItem` the conversation core works with:
- the bot account's own posts are `self` (the persona speaking as the bot), or `system` when they
  are command responses or other non-chat messages (never turns);
- posts through one of the bot's webhooks, under a persona's display name, are `persona` posts;
- other bots are `bot`, everyone else `member`; their content has the bot's own mention removed
  and other user mentions shown as `@name`.

Nothing here imports `discord`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from bot.conversations.history import ChatMessage, HistoryItem

_USER_MENTION = re.compile(r"<@!?(\d+)>")


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What `classify` needs to know about a platform message."""

    id: int
    author_id: int
    author_name: str                    # as shown in the channel (nickname, global name, user name)
    content: str
    author_username: str = ""           # the account name (a webhook post's name is the persona's display name)
    author_is_bot: bool = False
    mentions: Mapping[int, str] = field(default_factory=dict)   # mentioned user id -> shown name
    reference_id: int | None = None     # the message it replies to
    webhook_id: int | None = None
    application_id: int | None = None
    is_chat: bool = True                # a plain message or a reply (not a join, pin, ... notice)
    from_interaction: bool = False      # the response to a slash command or button


@dataclass(slots=True)
class Identity:
    """Who "we" are: the bot account, its application, its webhooks, and its personas' display names."""

    user_id: int
    application_id: int | None
    personas_by_display: Mapping[str, str]          # display name, lower-cased -> persona name
    webhook_ids: set[int] = field(default_factory=set)

    def persona_of(self, facts: MessageFacts) -> str | None:
        """The persona that posted this through one of our webhooks, else None."""
        if facts.webhook_id is None:
            return None
        ours = facts.webhook_id in self.webhook_ids or (
            facts.application_id is not None and facts.application_id == self.application_id)
        return self.personas_by_display.get((facts.author_username or facts.author_name).lower()) if ours else None


def clean_content(content: str, mentions: Mapping[int, str], me: int) -> str:
    """Content with our own mention removed and other user mentions shown as @name."""
    if "<@" not in content:
        return content.strip()

    def sub(m: re.Match) -> str:
        uid = int(m.group(1))
        return "" if uid == me else "@" + mentions.get(uid, "someone")

    return _USER_MENTION.sub(sub, content).strip()


def classify(facts: MessageFacts, us: Identity) -> HistoryItem:
    ref = facts.reference_id
    if facts.author_id == us.user_id:
        system = not facts.is_chat or facts.from_interaction
        chat = ChatMessage(facts.id, str(facts.author_id), facts.author_name, facts.content, "system" if system else "self")
        return HistoryItem(chat, ref, True)
    persona = us.persona_of(facts)
    if persona is not None:
        return HistoryItem(ChatMessage(facts.id, str(facts.author_id), facts.author_name, facts.content, "persona", persona),
                           ref, True)
    speaker = "bot" if facts.author_is_bot else "member"
    content = clean_content(facts.content, facts.mentions, us.user_id)
    return HistoryItem(ChatMessage(facts.id, str(facts.author_id), facts.author_name, content, speaker), ref)
