"""Discord I/O for the chat cog: messages → `ChatMessage`, and where replies are posted.

Replies go through a channel webhook under the persona's display name and avatar when the bot has
Manage Webhooks in the channel (so several personas can share it), else through the plain bot
account as a reply to the member's message. A persona whose avatar is a local file (an imported
card's image) rather than a URL gets its own webhook in the channel, created with that image as
the webhook's avatar: a webhook message can only name an avatar by URL. Both sinks map "the message is gone" (deleted
mid-stream, channel or thread removed) to `MessageGone` so the streaming core abandons quietly.
"""
from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import discord
from discord.http import handle_message_parameters
from discord.utils import MISSING

from bot.conversations.history import ChatMessage, HistoryItem
from bot.conversations.streaming import MessageGone
from bot.persona.spec import PersonaSpec

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

WEBHOOK_NAME = "personabot"
# Discord error codes meaning the target no longer exists: unknown channel / message / webhook.
_GONE_CODES = {10003, 10008, 10015}
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_NO_PINGS = discord.AllowedMentions.none()


def _gone(exc: discord.HTTPException) -> bool:
    return isinstance(exc, discord.NotFound) or exc.code in _GONE_CODES


class Posted(NamedTuple):
    """A message the bot account posted: all a reply needs to edit it later."""

    id: int
    channel_id: int


class ChannelSink:
    """Post as the bot account; the first part replies to the member's message when asked to.

    Goes through discord.py's HTTP layer rather than `channel.send`/`message.edit`, which build a
    full `Message` from every response: the reply only needs the new message's id, and the gateway
    delivers the message itself anyway.
    """

    def __init__(self, channel: discord.abc.Messageable, reference: discord.Message | None = None):
        self.channel = channel
        self.reference = reference

    async def send(self, text: str) -> Posted:
        ref, self.reference = self.reference, None
        channel = self.channel
        state = channel._state
        try:
            with handle_message_parameters(
                content=text, nonce=secrets.randbits(64), allowed_mentions=_NO_PINGS,
                message_reference=ref.to_reference(fail_if_not_exists=False).to_message_reference_dict() if ref else MISSING,
                previous_allowed_mentions=state.allowed_mentions, mention_author=False,
            ) as params:
                data = await state.http.send_message(channel.id, params=params)
        except discord.HTTPException as exc:
            if _gone(exc):
                raise MessageGone() from None
            raise
        return Posted(int(data["id"]), channel.id)

    async def edit(self, handle: Posted, text: str) -> None:
        state = self.channel._state
        try:
            with handle_message_parameters(content=text, allowed_mentions=_NO_PINGS,
                                           previous_allowed_mentions=state.allowed_mentions) as params:
                await state.http.edit_message(handle.channel_id, handle.id, params=params)
        except discord.HTTPException as exc:
            if _gone(exc):
                raise MessageGone() from None
            raise


class WebhookSink:
    """Post through the channel's webhook as the persona (into a thread when given)."""

    def __init__(self, webhook: discord.Webhook, persona: PersonaSpec, thread: discord.Thread | None):
        self.webhook = webhook
        self.persona = persona
        self.thread = thread

    async def send(self, text: str) -> discord.WebhookMessage:
        try:
            return await self.webhook.send(
                text, username=self.persona.display_name, avatar_url=self.persona.avatar_url or discord.utils.MISSING,
                wait=True, thread=self.thread or discord.utils.MISSING, allowed_mentions=_NO_PINGS,
            )
        except discord.HTTPException as exc:
            if _gone(exc):
                raise MessageGone() from None
            raise

    async def edit(self, handle: discord.WebhookMessage, text: str) -> None:
        try:
            await self.webhook.edit_message(handle.id, content=text, thread=self.thread or discord.utils.MISSING,
                                            allowed_mentions=_NO_PINGS)
        except discord.HTTPException as exc:
            if _gone(exc):
                raise MessageGone() from None
            raise


def _avatar_file(persona: PersonaSpec) -> Path | None:
    if persona.avatar_url or not persona.avatar_file or persona.folder is None:
        return None
    path = persona.folder / persona.avatar_file
    return path if path.is_file() else None


class Webhooks:
    """One webhook per channel, found or created once and kept for the bot's lifetime."""

    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        self._by_channel: dict[int, discord.Webhook | None] = {}
        self._by_persona: dict[tuple[int, str], discord.Webhook | None] = {}
        self._locks: dict = {}
        self.ids: set[int] = set()

    def usable_in(self, channel: discord.abc.Messageable) -> discord.TextChannel | None:
        """The channel a webhook would belong to (a thread's parent), if the bot may manage webhooks there."""
        parent = channel.parent if isinstance(channel, discord.Thread) else channel
        if not isinstance(parent, discord.TextChannel) or parent.guild.me is None:
            return None
        return parent if parent.permissions_for(parent.guild.me).manage_webhooks else None

    async def for_channel(self, parent: discord.TextChannel) -> discord.Webhook | None:
        if parent.id in self._by_channel:
            return self._by_channel[parent.id]
        lock = self._locks.setdefault(parent.id, asyncio.Lock())
        async with lock:
            if parent.id not in self._by_channel:
                self._by_channel[parent.id] = await self._find_or_create(parent)
        return self._by_channel[parent.id]

    async def for_persona(self, parent: discord.TextChannel, persona: PersonaSpec) -> discord.Webhook | None:
        """The persona's own webhook when its avatar is a local file, else the channel's shared one."""
        avatar = _avatar_file(persona)
        if avatar is None:
            return await self.for_channel(parent)
        key = (parent.id, persona.name)
        if key not in self._by_persona:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                if key not in self._by_persona:
                    self._by_persona[key] = await self._find_or_create(parent, f"{WEBHOOK_NAME}-{persona.name}"[:80], avatar)
        return self._by_persona[key] or await self.for_channel(parent)

    async def _find_or_create(self, parent: discord.TextChannel, name: str = WEBHOOK_NAME,
                              avatar: Path | None = None) -> discord.Webhook | None:
        try:
            for hook in await parent.webhooks():
                if hook.token and (hook.user is None or hook.user.id == self.bot.user.id) and hook.name == name:
                    self.ids.add(hook.id)
                    return hook
            image = await asyncio.to_thread(avatar.read_bytes) if avatar is not None else None
            hook = await parent.create_webhook(name=name, avatar=image, reason="personabot posts as its personas here")
        except discord.HTTPException as exc:
            # Permission overwrites can still refuse: fall back to the bot account for this channel.
            log.warning("no webhook in channel %s (HTTP %s, code %s); posting as the bot", parent.id, exc.status, exc.code)
            return None
        except (OSError, ValueError) as exc:
            # An avatar file that is gone or not an image discord.py accepts: use the shared webhook.
            log.warning("webhook avatar %s unusable (%s); using the channel's shared webhook", avatar, type(exc).__name__)
            return None
        self.ids.add(hook.id)
        return hook


class Speakers:
    """Tells who wrote a message: a member, the bot itself, one of its personas, another bot."""

    def __init__(self, bot: "PersonaBot", webhooks: Webhooks):
        self.bot = bot
        self.webhooks = webhooks
        # Which member message each persona post answered: webhook posts cannot carry a reply
        # reference, so this keeps a reply chain going through them. Bounded; lost on restart.
        self.answered: OrderedDict[int, int] = OrderedDict()

    @property
    def _by_display(self) -> dict[str, str]:
        # Built per call: personas can be added while the bot runs (/persona import), and there are few.
        return {p.display_name.lower(): p.name for p in self.bot.personas.values()}

    def remember_answer(self, reply_id: int, answered_id: int) -> None:
        self.answered[reply_id] = answered_id
        while len(self.answered) > 10_000:
            self.answered.popitem(last=False)

    def persona_of(self, message: discord.Message) -> str | None:
        """The persona that posted `message` through one of our webhooks, else None."""
        if message.webhook_id is None:
            return None
        ours = message.webhook_id in self.webhooks.ids or (
            message.application_id is not None and message.application_id == self.bot.application_id)
        return self._by_display.get(message.author.name.lower()) if ours else None

    def clean(self, message: discord.Message) -> str:
        """Content with the bot's mention removed and other mentions shown as @name."""
        return self._clean(message.content, {u.id: u.display_name for u in message.mentions})

    def _clean(self, content: str, names: dict[int, str]) -> str:
        me = self.bot.user.id

        def sub(m: re.Match) -> str:
            uid = int(m.group(1))
            return "" if uid == me else "@" + names.get(uid, "someone")

        return _USER_MENTION.sub(sub, content).strip() if "<@" in content else content.strip()

    def to_chat_message(self, message: discord.Message) -> ChatMessage:
        return self.from_message(message).chat

    def from_message(self, message: discord.Message) -> HistoryItem:
        """A message the gateway delivered."""
        author = message.author
        ref = message.reference.message_id if message.reference else None
        if author.id == self.bot.user.id:
            system = message.type not in (discord.MessageType.default, discord.MessageType.reply) \
                or message.interaction_metadata is not None
            return HistoryItem(ChatMessage(message.id, str(author.id), author.display_name, message.content,
                                           "system" if system else "self"), ref, True)
        persona = self.persona_of(message)
        if persona is not None:
            return HistoryItem(ChatMessage(message.id, str(author.id), author.display_name, message.content,
                                           "persona", persona), ref, True)
        speaker = "bot" if author.bot else "member"
        return HistoryItem(ChatMessage(message.id, str(author.id), author.display_name, self.clean(message), speaker), ref)

    def from_payload(self, data: dict) -> HistoryItem:
        """A message read back over REST, as the raw payload.

        History is read as JSON rather than as discord.py `Message` objects: building those (author,
        member, referenced message, ...) for a hundred messages per reply cost more than everything
        else the bot does for a message.
        """
        author = data["author"]
        author_id = int(author["id"])
        mid = int(data["id"])
        ref = (data.get("message_reference") or {}).get("message_id")
        ref_id = int(ref) if ref else None
        name = (data.get("member") or {}).get("nick") or author.get("global_name") or author.get("username") or "someone"
        content = data.get("content") or ""
        if author_id == self.bot.user.id:
            system = data.get("type", 0) not in (0, 19) or bool(data.get("interaction_metadata"))
            chat = ChatMessage(mid, str(author_id), name, content, "system" if system else "self")
            return HistoryItem(chat, ref_id, True)
        webhook_id = data.get("webhook_id")
        if webhook_id is not None:
            ours = int(webhook_id) in self.webhooks.ids or str(data.get("application_id")) == str(self.bot.application_id)
            persona = self._by_display.get((author.get("username") or "").lower()) if ours else None
            if persona is not None:
                chat = ChatMessage(mid, str(author_id), name, content, "persona", persona)
                return HistoryItem(chat, ref_id, True)
        names = {int(u["id"]): u.get("global_name") or u.get("username") or "someone" for u in data.get("mentions") or ()}
        chat = ChatMessage(mid, str(author_id), name, self._clean(content, names), "bot" if author.get("bot") else "member")
        return HistoryItem(chat, ref_id, False)

