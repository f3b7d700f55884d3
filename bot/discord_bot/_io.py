"""Discord I/O for the chat cog: messages → `MessageFacts`, and where replies are posted.

Everything goes through discord.py's public API: `Messageable.send`, `Message.edit`,
`Webhook.send`/`edit_message`, `channel.history`, `fetch_message`.

Replies go through a channel webhook under the persona's display name and avatar when the bot has
Manage Webhooks in the channel (so several personas can share it), else through the plain bot
account as a reply to the member's message. A persona whose avatar is a local file (an imported
card's image) rather than a URL gets its own webhook in the channel, created with that image as
the webhook's avatar: a webhook message can only name an avatar by URL. A webhook deleted meanwhile
(404, Unknown Webhook) is forgotten, the reply continues as the bot account, and the next reply
finds or creates a new webhook. Both sinks map "the message is gone" (deleted mid-stream, channel
or thread removed) to `MessageGone` so the streaming core abandons quietly.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import discord

from bot.conversations.classify import Identity, MessageFacts, classify
from bot.conversations.history import HistoryItem
from bot.conversations.streaming import MessageGone
from bot.persona.spec import PersonaSpec

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

WEBHOOK_NAME = "personabot"
UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK = 10003, 10008, 10015
_CHAT_TYPES = (discord.MessageType.default, discord.MessageType.reply)
_NO_PINGS = discord.AllowedMentions.none()


def _gone(exc: discord.HTTPException) -> bool:
    return isinstance(exc, discord.NotFound) or exc.code in (UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK)


class ChannelSink:
    """Post as the bot account; the first part replies to the member's message when asked to."""

    def __init__(self, channel: discord.abc.Messageable, reference: discord.Message | None = None):
        self.channel = channel
        self.reference = reference

    async def send(self, text: str) -> discord.Message:
        ref, self.reference = self.reference, None
        try:
            return await self.channel.send(text, reference=ref.to_reference(fail_if_not_exists=False) if ref else None,
                                           allowed_mentions=_NO_PINGS, mention_author=False)
        except discord.HTTPException as exc:
            if _gone(exc):
                raise MessageGone() from None
            raise

    async def edit(self, handle: discord.Message, text: str) -> None:
        try:
            await handle.edit(content=text, allowed_mentions=_NO_PINGS)
        except discord.HTTPException as exc:
            if _gone(exc):
                raise MessageGone() from None
            raise


class WebhookSink:
    """Post through the channel's webhook as the persona (into a thread when given); if the webhook
    is gone, carry on through `fallback` (the bot account) and tell `webhooks` to drop it."""

    def __init__(self, webhook: discord.Webhook, persona: PersonaSpec, thread: discord.Thread | None,
                 fallback: ChannelSink, webhooks: "Webhooks", channel_id: int):
        self.webhook = webhook
        self.persona = persona
        self.thread = thread
        self.fallback = fallback
        self._webhooks = webhooks
        self._channel_id = channel_id
        self.fell_back = False

    def _lost(self) -> None:
        if not self.fell_back:
            self.fell_back = True
            self._webhooks.forget(self._channel_id)
            log.warning("webhook of channel %s is gone; answering as the bot account, a new one is made next time",
                        self._channel_id)

    async def send(self, text: str):
        if self.fell_back:
            return await self.fallback.send(text)
        try:
            return await self.webhook.send(
                text, username=self.persona.display_name, avatar_url=self.persona.avatar_url or discord.utils.MISSING,
                wait=True, thread=self.thread or discord.utils.MISSING, allowed_mentions=_NO_PINGS,
            )
        except discord.HTTPException as exc:
            if exc.code == UNKNOWN_WEBHOOK or (isinstance(exc, discord.NotFound) and exc.code != UNKNOWN_CHANNEL):
                self._lost()
                return await self.fallback.send(text)
            if _gone(exc):
                raise MessageGone() from None
            raise

    async def edit(self, handle, text: str) -> None:
        if not isinstance(handle, discord.WebhookMessage):
            await self.fallback.edit(handle, text)
            return
        try:
            await self.webhook.edit_message(handle.id, content=text, thread=self.thread or discord.utils.MISSING,
                                            allowed_mentions=_NO_PINGS)
        except discord.HTTPException as exc:
            if exc.code == UNKNOWN_WEBHOOK:
                self._lost()   # the posted part can no longer be edited: the caller posts a notice
            if _gone(exc) and exc.code != UNKNOWN_WEBHOOK:
                raise MessageGone() from None
            raise


def _avatar_file(persona: PersonaSpec) -> Path | None:
    if persona.avatar_url or not persona.avatar_file or persona.folder is None:
        return None
    path = persona.folder / persona.avatar_file
    return path if path.is_file() else None


class Webhooks:
    """One webhook per channel, found or created when first needed, dropped when it turns out gone."""

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

    def forget(self, channel_id: int) -> None:
        """The channel's webhook was deleted: find or create one again next time."""
        hooks = [self._by_channel.pop(channel_id, None)]
        hooks += [self._by_persona.pop(key) for key in [k for k in self._by_persona if k[0] == channel_id]]
        for hook in hooks:
            if hook is not None:
                self.ids.discard(hook.id)

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
    """Tells who wrote a message (`bot.conversations.classify`), from discord.py's `Message`."""

    def __init__(self, bot: "PersonaBot", webhooks: Webhooks):
        self.bot = bot
        self.webhooks = webhooks
        self._identity: Identity | None = None
        self._identity_personas: tuple[str, ...] = ()
        # Which member message each persona post answered: webhook posts cannot carry a reply
        # reference, so this keeps a reply chain going through them. Bounded; lost on restart.
        self.answered: OrderedDict[int, int] = OrderedDict()

    @property
    def identity(self) -> Identity:
        # Rebuilt when the persona set changes (/persona import, twins): display names map to personas.
        names = tuple(self.bot.personas)
        if self._identity is None or names != self._identity_personas:   # the bot's user is known once logged in
            self._identity = Identity(self.bot.user.id, self.bot.application_id,
                                      {p.display_name.lower(): p.name for p in self.bot.personas.values()},
                                      self.webhooks.ids)
            self._identity_personas = names
        return self._identity

    def remember_answer(self, reply_id: int, answered_id: int) -> None:
        self.answered[reply_id] = answered_id
        while len(self.answered) > 10_000:
            self.answered.popitem(last=False)

    @staticmethod
    def facts(message: discord.Message) -> MessageFacts:
        author = message.author
        return MessageFacts(
            id=message.id, author_id=author.id, author_name=author.display_name, content=message.content,
            author_username=author.name, author_is_bot=author.bot,
            mentions={u.id: u.display_name for u in message.mentions} if message.mentions else {},
            reference_id=message.reference.message_id if message.reference else None,
            webhook_id=message.webhook_id, application_id=message.application_id,
            is_chat=message.type in _CHAT_TYPES, from_interaction=message.interaction_metadata is not None,
        )

    def classify(self, message: discord.Message) -> HistoryItem:
        return classify(self.facts(message), self.identity)

    def persona_of(self, message: discord.Message) -> str | None:
        """The persona that posted `message` through one of our webhooks, else None."""
        return self.identity.persona_of(self.facts(message)) if message.webhook_id is not None else None

    def clean(self, message: discord.Message) -> str:
        """Content with the bot's mention removed and other mentions shown as @name."""
        return self.classify(message).chat.content
