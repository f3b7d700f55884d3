"""Should the bot answer this message, as which persona, in which conversation?

`Directory` keeps the channel bindings and /chat threads in memory (loaded once from the store and
updated by the commands that change them), so routing a message is synchronous: messages are queued
in the order they arrived, with no database round trip in between that could reorder them.

The rules, in order:
1. a direct message is answered by the default persona, when DMs are enabled;
2. a /chat thread is answered on every message by its persona;
3. a mention of the bot, or a reply to the bot or to one of its personas, is answered; by the
   persona replied to, else the channel's bound persona (a thread inherits its parent channel's),
   else the default persona;
4. in a channel bound in `all` mode (or a thread of one), every message is answered.
Everything else is left alone. Callers have already dropped messages from bots and webhooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiosqlite

from bot.store import channels as channel_store
from bot.store.channels import Binding, ChatThread

Reason = Literal["dm", "thread", "mention", "reply", "channel"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """What routing needs to know about a message, taken from the platform's message object."""

    channel_id: str
    parent_id: str | None = None        # the parent channel, for a message in a thread
    is_dm: bool = False
    mentions_bot: bool = False
    replies_to_bot: bool = False        # replying to the bot account or to a persona's post
    replied_persona: str | None = None  # the persona whose post is replied to, when known


@dataclass(frozen=True, slots=True)
class Route:
    persona: str
    conversation_key: str               # also the stored conversation key: "discord:<channel or thread id>"
    reason: Reason


class Directory:
    def __init__(self, default_persona: str, *, dms_enabled: bool = True):
        self.default_persona = default_persona
        self.dms_enabled = dms_enabled
        self.bindings: dict[str, Binding] = {}
        self.threads: dict[str, ChatThread] = {}

    async def load(self, db: aiosqlite.Connection) -> None:
        self.bindings = {b.channel_id: b for b in await channel_store.list_bindings(db)}
        self.threads = {t.thread_id: t for t in await channel_store.list_chat_threads(db)}

    # -- changes (the store is written by the caller first; this mirrors it) --------------------

    def bind(self, binding: Binding) -> None:
        self.bindings[binding.channel_id] = binding

    def unbind(self, channel_id: str) -> None:
        self.bindings.pop(channel_id, None)

    def add_thread(self, thread: ChatThread) -> None:
        self.threads[thread.thread_id] = thread

    # -- lookups --------------------------------------------------------------------------------

    def binding_for(self, channel_id: str, parent_id: str | None = None) -> Binding | None:
        """The channel's own binding, else (for a thread) its parent's."""
        found = self.bindings.get(channel_id)
        if found is None and parent_id is not None:
            found = self.bindings.get(parent_id)
        return found

    def persona_for(self, channel_id: str, parent_id: str | None = None) -> str:
        """Who speaks here when addressed: a /chat thread's persona, the binding's, else the default."""
        thread = self.threads.get(channel_id)
        if thread is not None:
            return thread.persona
        binding = self.binding_for(channel_id, parent_id)
        return binding.persona if binding else self.default_persona

    def route(self, msg: Incoming) -> Route | None:
        key = f"discord:{msg.channel_id}"
        if msg.is_dm:
            if not self.dms_enabled:
                return None
            # A DM bound to a persona (`/twin chat` binds its owner's DM to the twin) talks to it.
            return Route(msg.replied_persona or self.persona_for(msg.channel_id), key, "dm")
        thread = self.threads.get(msg.channel_id)
        if thread is not None:
            return Route(msg.replied_persona or thread.persona, key, "thread")
        binding = self.binding_for(msg.channel_id, msg.parent_id)
        if msg.replies_to_bot or msg.mentions_bot:
            persona = msg.replied_persona or (binding.persona if binding else self.default_persona)
            return Route(persona, key, "reply" if msg.replies_to_bot else "mention")
        if binding is not None and binding.mode == "all":
            return Route(binding.persona, key, "channel")
        return None
