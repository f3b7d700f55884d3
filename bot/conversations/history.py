"""Chat messages read back from the platform → the engine's `Turn`s, and a window of recent ones.

`RecentMessages` keeps, per channel, the last messages the platform showed the bot: seeded once
from the platform's history, then kept current from its live events (new, edited, deleted
messages). Reading a conversation back is then a memory read instead of a history request per
reply. Nothing is written anywhere: it is the platform's history, held in memory, bounded per
channel and in the number of channels, and dropped whenever events may have been missed.

The front end converts each platform message into a `ChatMessage` (who said it, as what kind of
speaker) and calls `to_turns`. The rules:
- the conversation restarts after the newest reset notice (/reset), so earlier messages are dropped;
- the bot's own notices and system messages (command responses, "busy") are not turns;
- the bot account's messages and the persona's own webhook posts are the persona's turns;
- other personas' posts in a shared channel are other speakers, named by their display name;
- members, whether or not they opted in to logging, are context: this list lives only in memory.

`in_reply_order` puts each of the bot's replies right after the message it answered.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from operator import itemgetter
from typing import Iterable, Literal, Mapping, NamedTuple

from bot.conversations.notices import NOTICES, RESET_NOTICE
from bot.engine.types import Turn
from bot.persona.spec import PersonaSpec

Speaker = Literal["member", "self", "persona", "bot", "system"]
_ORDER = itemgetter(0, 1, 2)   # (anchor, is a reply, id): a reply right after what it answered


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: int
    author_id: str
    author_name: str
    content: str
    speaker: Speaker = "member"
    persona: str | None = None       # for speaker "persona": which persona posted it


class HistoryItem(NamedTuple):
    chat: ChatMessage
    reference: int | None = None    # the message it replies to (for the bot's posts: the one it answered)
    ours: bool = False              # posted by the bot account or one of its personas


class _Window:
    __slots__ = ("items", "seeded", "trimmed")

    def __init__(self) -> None:
        self.items: dict[int, HistoryItem] = {}   # by message id, oldest first
        self.seeded = False
        self.trimmed = False                      # older messages exist beyond the window


class RecentMessages:
    """The last `per_channel` messages of up to `channels` channels (least recently used dropped)."""

    def __init__(self, per_channel: int = 100, channels: int = 5000):
        self.per_channel = per_channel
        self.max_channels = channels
        self._windows: OrderedDict[int, _Window] = OrderedDict()

    def _window(self, channel_id: int) -> _Window:
        window = self._windows.get(channel_id)
        if window is None:
            window = self._windows[channel_id] = _Window()
            while len(self._windows) > self.max_channels:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(channel_id)
        return window

    def _trim(self, window: _Window) -> None:
        excess = len(window.items) - self.per_channel
        if excess > 0:
            for mid in list(window.items)[:excess]:
                del window.items[mid]
            window.trimmed = True

    def add(self, channel_id: int, item: HistoryItem) -> None:
        """A new message seen live. Unseeded channels collect too, and are merged when seeded."""
        window = self._window(channel_id)
        items = window.items
        if items and item.chat.id < next(reversed(items)):
            items[item.chat.id] = item
            window.items = dict(sorted(items.items()))
        else:
            items[item.chat.id] = item
        self._trim(window)

    def edit(self, channel_id: int, item: HistoryItem) -> None:
        window = self._windows.get(channel_id)
        if window is not None and item.chat.id in window.items:
            window.items[item.chat.id] = item

    def delete(self, channel_id: int, message_id: int) -> None:
        window = self._windows.get(channel_id)
        if window is not None and window.items.pop(message_id, None) is not None and window.trimmed:
            # The window no longer holds as many messages as it should: read it back next time.
            window.seeded = False

    def seed(self, channel_id: int, older: Iterable[HistoryItem]) -> None:
        """Merge the platform's history (any order) under what was seen live; the window is complete from now on."""
        window = self._window(channel_id)
        merged = {i.chat.id: i for i in older}
        merged.update(window.items)     # live events are newer than a history read
        window.items = dict(sorted(merged.items()))
        window.seeded = True
        self._trim(window)

    def get(self, channel_id: int, limit: int) -> list[HistoryItem] | None:
        """The newest `limit` messages, oldest first; None if the channel must be read from the platform first."""
        window = self._windows.get(channel_id)
        if window is None or not window.seeded or limit > self.per_channel:
            return None
        self._windows.move_to_end(channel_id)
        items = list(window.items.values())
        return items[-limit:]

    def held(self, channel_id: int, limit: int) -> list[HistoryItem]:
        """Whatever the window holds (seeded or not), newest `limit`, oldest first: the fallback
        when the platform's history cannot be read."""
        window = self._windows.get(channel_id)
        return list(window.items.values())[-limit:] if window is not None else []

    def find(self, channel_id: int, message_id: int) -> HistoryItem | None:
        window = self._windows.get(channel_id)
        return window.items.get(message_id) if window is not None else None

    def forget(self, channel_id: int | None = None) -> None:
        """Drop one channel's window, or all of them (after a reconnect that may have missed events)."""
        if channel_id is None:
            self._windows.clear()
        else:
            self._windows.pop(channel_id, None)


def to_turns(messages: Iterable[ChatMessage], persona: PersonaSpec, personas: dict[str, PersonaSpec] | None = None) -> list[Turn]:
    """`messages` oldest first → turns oldest first, for `persona` to answer."""
    ordered = messages if isinstance(messages, list) else list(messages)
    start = 0
    for i in range(len(ordered) - 1, -1, -1):
        m = ordered[i]
        if (m.speaker == "self" or m.speaker == "system") and m.content.startswith(RESET_NOTICE):
            start = i + 1
            break
    own_name, own_persona = persona.display_name, persona.name
    personas = personas or {}
    turns: list[Turn] = []
    append = turns.append
    for i in range(start, len(ordered)):
        m = ordered[i]
        speaker = m.speaker
        if speaker == "system":
            continue
        content = m.content.strip()
        if not content:
            continue
        if speaker == "member" or speaker == "bot":
            append(Turn(m.author_id, m.author_name, content))
        elif speaker == "self":
            if not content.startswith(NOTICES):
                append(Turn(m.author_id, own_name, content, True))
        elif m.persona == own_persona:     # speaker "persona"
            append(Turn(m.author_id, own_name, content, True))
        else:
            other = personas.get(m.persona or "")
            append(Turn(f"persona:{m.persona or m.author_id}", other.display_name if other else m.author_name, content))
    return turns


def in_reply_order(message: HistoryItem, recent: list[HistoryItem], answered: Mapping[int, int]) -> list[HistoryItem]:
    """The channel's recent messages up to `message`, each of our replies right after what it answered.

    A reply is posted after the messages that arrived while it was generated, so in channel order
    it would follow them; the model must see it where it belongs. `answered` maps our posts that
    carry no reply reference (webhook posts) to the message they answered. Messages newer than
    `message` are left for the next turn; `message` itself is included even if `recent` lacks it.
    """
    mid = message.chat.id
    keyed = []
    present = moved = False
    for item in recent:
        cid = item.chat.id
        anchor = cid
        if item.ours:
            target = answered.get(cid, item.reference)
            if target is not None:
                anchor = target
        if anchor <= mid:
            if anchor != cid:
                moved = True
            elif cid == mid:
                present = True
            keyed.append((anchor, anchor != cid, cid, item))
    if not present:
        keyed.append((mid, False, mid, message))
    if moved or not present:
        keyed.sort(key=_ORDER)
    return [k[3] for k in keyed]
