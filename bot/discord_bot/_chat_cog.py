"""Chatting: when the bot answers, the streamed reply, 👍/👎 feedback, /chat and /reset.

Flow of a message: `on_message` drops bots, webhooks and system messages, asks the routing
`Directory` (synchronously, so arrival order is kept) whether and as whom to answer, and queues the
message on its conversation. The conversation's worker (`answer_batch`) gets every message that
arrived since its last reply, takes a generation slot (or posts the busy notice when the queue is
full), reads the history back from Discord, streams the engine's reply into Discord, and hands the
exchange to the one write path, `log_exchange`, which stores it only if the member opted in.

Logs carry ids, lengths, persona names and error types, never message text.
"""
from __future__ import annotations

import asyncio
import logging
import time
from operator import itemgetter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.conversations.history import to_turns
from bot.conversations.notices import BUSY_NOTICE, RESET_NOTICE
from bot.conversations.routing import Incoming, Route
from bot.conversations.scheduling import Busy
from bot.conversations.streaming import render_stream
from bot.conversations.history import ChatMessage, HistoryItem, RecentMessages
from bot.conversations.split import split_message
from bot.conversations.streaming import MessageGone
from bot.discord_bot._io import ChannelSink, Speakers, WebhookSink, Webhooks
from bot.persona import macros
from bot.persona.spec import PersonaSpec
from bot.store import channels as channel_store
from bot.store.exchanges import log_exchange
from bot.store.feedback import feedback_value, record_feedback

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

# Typing starts only if no text is visible after this long: a fast reply needs no indicator, and
# skipping it saves a request per message. A queued or slow generation shows it.
TYPING_GRACE_S = 0.25
TYPING_REFRESH_S = 8.0   # Discord shows typing for about 10 s per trigger
_ORDER = itemgetter(0, 1, 2)   # (anchor, is a reply, id): a reply right after what it answered


@dataclass(slots=True)
class Pending:
    message: discord.Message
    route: Route
    received: float


def history_limit(persona: PersonaSpec) -> int:
    """How many messages to read back: enough to fill the persona's token budget (the engine trims)."""
    return max(10, min(100, persona.context_budget // 16))


async def persona_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    bot: PersonaBot = interaction.client  # type: ignore[assignment]
    current = current.lower()
    return [app_commands.Choice(name=f"{p.display_name} ({p.name})", value=p.name)
            for p in bot.personas.values() if current in p.name.lower() or current in p.display_name.lower()][:25]


class ChatCog(commands.Cog):
    def __init__(self, bot: "PersonaBot"):
        self.bot = bot
        self.webhooks = Webhooks(bot)
        self.speakers = Speakers(bot, self.webhooks)
        self.recent = RecentMessages(per_channel=100)

    # -- incoming messages ----------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        bot = self.bot
        if bot.user is None:
            return
        # Every message is context, the bot's own and other bots' included.
        self.recent.add(message.channel.id, self.speakers.from_message(message))
        if message.author.bot or message.webhook_id is not None:
            return  # never answer bots, webhooks (our personas included) or itself
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        route = bot.directory.route(self._incoming(message))
        if route is None:
            return
        log.debug("queued message %s in %s for %s (%s)", message.id, route.conversation_key, route.persona, route.reason)
        bot.metrics.message(bot.persona(route.persona).name)
        bot.conversations.submit(route.conversation_key, Pending(message, route, time.monotonic()))

    def _incoming(self, message: discord.Message) -> Incoming:
        me = self.bot.user.id
        channel = message.channel
        replied = message.reference.resolved if message.reference else None
        replies_to_bot, replied_persona = False, None
        if isinstance(replied, discord.Message):
            replied_persona = self.speakers.persona_of(replied)
            replies_to_bot = replied.author.id == me or replied_persona is not None
        return Incoming(
            channel_id=str(channel.id),
            parent_id=str(channel.parent_id) if isinstance(channel, discord.Thread) else None,
            is_dm=message.guild is None,
            mentions_bot=any(u.id == me for u in message.mentions),
            replies_to_bot=replies_to_bot,
            replied_persona=replied_persona,
        )

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if "author" in payload.data and self.bot.user is not None:
            self.recent.edit(payload.channel_id, self.speakers.from_payload(payload.data))

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.recent.delete(payload.channel_id, payload.message_id)

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for mid in payload.message_ids:
            self.recent.delete(payload.channel_id, mid)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # A new session (not a resume) may have missed events: read channels back afresh.
        self.recent.forget()

    # -- answering ------------------------------------------------------------------------------

    async def answer_batch(self, key: str, batch: list[Pending]) -> None:
        """Everything that arrived since the last reply: one reply per run of messages to one persona."""
        run: list[Pending] = []
        for item in batch:
            if run and item.route.persona != run[-1].route.persona:
                await self._answer(key, run)
                run = []
            run.append(item)
        if run:
            await self._answer(key, run)

    async def _answer(self, key: str, run: list[Pending]) -> None:
        bot = self.bot
        last = run[-1]
        message = last.message
        persona = bot.persona(last.route.persona)
        try:
            slot = bot.gate.slot()
        except Busy:
            log.warning("busy: %d generating, %d queued; refused message %s in %s",
                        bot.gate.running, bot.gate.waiting, message.id, key)
            bot.metrics.refused(persona.name)
            await self._post_notice(message, BUSY_NOTICE)
            return
        typing = _Typing(bot.http, message.channel.id)
        started = time.monotonic()
        try:
            async with slot:
                history = await self._history(message, persona)
                stream = bot.engine.respond(persona, to_turns(history, persona, bot.personas))
                sink = await self._sink(message, persona, reply=last.route.reason in ("mention", "reply"))
                result = await render_stream(stream, _Tracked(sink, typing, self.speakers, message.id),
                                             edit_interval_s=bot.settings.discord.edit_interval_s)
        except discord.HTTPException as exc:
            log.warning("reply to message %s in %s failed: HTTP %s (code %s)", message.id, key, exc.status, exc.code)
            return
        except Exception:
            # A bug, not a backend failure (the engine turns those into the apology itself): the
            # member still gets the persona's apology, and the error is logged by the queue.
            await self._post_notice(message, persona.error_reply)
            raise
        finally:
            typing.cancel()
        reply = stream.reply
        if result.abandoned:
            log.info("reply to message %s in %s abandoned: its message was deleted", message.id, key)
            return
        log.info("persona %s answered message %s in %s: %d chars in %d message(s), %d edit(s), %.0f ms, model %s%s",
                 persona.name, message.id, key, len(reply.text), len(result.handles), result.edits,
                 (time.monotonic() - started) * 1000, reply.model, ", silent" if reply.silent else "")
        if not result.handles or reply.interrupted or (reply.error is not None and reply.text.strip() == persona.error_reply.strip()):
            # Silence sends nothing; an apology alone is not a reply worth keeping; nor is one cut
            # short by shutdown, whose text ends with the bot's notice, not the persona's words.
            return
        # A reply cut short by a backend failure is kept with the error's type: curators see it flagged.
        author_id = message.author.id
        said = "\n".join(t for t in (self.speakers.clean(p.message) for p in run if p.message.author.id == author_id) if t)
        # The one write path: it stores nothing unless the author opted in.
        await log_exchange(bot.db, persona=persona.name, conversation_key=key, user_id=str(author_id),
                           user_content=said, reply_content=reply.text, model=reply.model,
                           user_external_id=str(message.id), reply_external_id=str(result.handles[0].id),
                           guild_id=str(message.guild.id) if message.guild else None,
                           error=reply.error.split(":", 1)[0] if reply.error else None)

    async def _history(self, message: discord.Message, persona: PersonaSpec) -> list[ChatMessage]:
        """The conversation read back from Discord, oldest first, ending with `message`."""
        limit = history_limit(persona)
        http = self.bot.http
        if message.reference is not None and message.reference.message_id is not None:
            items = await self._reply_chain(message, limit)
        else:
            channel_id = message.channel.id
            recent = self.recent.get(channel_id, limit)
            if recent is None:
                # First reply in this channel since start-up: read it back once; events keep it current.
                self.recent.seed(channel_id, [self.speakers.from_payload(d) for d in await http.logs_from(channel_id, limit)])
                recent = self.recent.get(channel_id, limit) or []
            items = self._in_reply_order(message, recent)
        return [item.chat for item in items]

    async def _reply_chain(self, message: discord.Message, limit: int) -> list[HistoryItem]:
        """The message, what it replies to, what that replies to... (oldest first)."""
        chain = [HistoryItem(self.speakers.to_chat_message(message), message.reference.message_id, False)]
        while len(chain) < limit:
            last = chain[-1]
            # A persona's webhook post carries no reference: we remember what it answered.
            ref_id = self.speakers.answered.get(last.chat.id, last.reference) if last.ours else last.reference
            if ref_id is None:
                break
            try:
                data = await self.bot.http.get_message(message.channel.id, ref_id)
            except discord.HTTPException:
                break  # deleted or not readable: the chain ends here
            chain.append(self.speakers.from_payload(data))
        chain.reverse()
        return chain

    def _in_reply_order(self, message: discord.Message, recent: list[HistoryItem]) -> list[HistoryItem]:
        """The channel's recent messages up to `message`, with each of our replies right after what it answered.

        A reply is posted after the messages that arrived while it was generated, so in channel
        order it would follow them; the model must see it where it belongs. Messages newer than
        `message` are left for the next turn.
        """
        answered = self.speakers.answered
        mid = message.id
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
            keyed.append((mid, False, mid, HistoryItem(self.speakers.to_chat_message(message))))
        if moved or not present:
            keyed.sort(key=_ORDER)
        return [k[3] for k in keyed]

    async def _sink(self, message: discord.Message, persona: PersonaSpec, *, reply: bool):
        parent = self.webhooks.usable_in(message.channel)
        if parent is not None:
            hook = await self.webhooks.for_persona(parent, persona)
            if hook is not None:
                thread = message.channel if isinstance(message.channel, discord.Thread) else None
                return WebhookSink(hook, persona, thread)
        return ChannelSink(message.channel, message if reply else None)

    async def _post_notice(self, message: discord.Message, text: str) -> None:
        try:
            await message.channel.send(text, reference=message.to_reference(fail_if_not_exists=False),
                                       mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not post a notice in %s: HTTP %s", message.channel.id, exc.status)

    # -- feedback -------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.bot.user is None or payload.user_id == self.bot.user.id:
            return
        emoji = str(payload.emoji)
        value = feedback_value(emoji)  # skin tones too
        if value is None or (payload.member is not None and payload.member.bot):
            return
        # Consent is checked inside; a reaction on a reply that was never stored is ignored.
        stored = await record_feedback(self.bot.db, user_id=str(payload.user_id),
                                       reply_external_id=str(payload.message_id), value=value)
        log.info("feedback %+d on message %s by %s: %s", value, payload.message_id, payload.user_id,
                 "stored" if stored else "not stored")

    # -- commands -------------------------------------------------------------------------------

    @app_commands.command(name="chat")
    @app_commands.describe(persona="Who to talk to (default: this channel's persona)",
                           topic="What the thread is about; becomes its name")
    @app_commands.autocomplete(persona=persona_autocomplete)
    @app_commands.guild_only()
    async def chat(self, interaction: discord.Interaction, persona: str | None = None, topic: str | None = None) -> None:
        """Open a thread where a persona answers every message, no mention needed."""
        bot = self.bot
        channel = interaction.channel
        parent = channel.parent if isinstance(channel, discord.Thread) else channel
        if not isinstance(parent, discord.TextChannel):
            await interaction.response.send_message("Threads can only be opened in a text channel.", ephemeral=True)
            return
        if persona is not None and persona not in bot.personas:
            await interaction.response.send_message(f"There is no persona called `{persona}`. Try `/persona list`.", ephemeral=True)
            return
        spec = bot.persona(persona or bot.directory.persona_for(str(parent.id)))
        name = (topic or f"Chat with {spec.display_name}").strip()[:100]
        try:
            thread = await parent.create_thread(name=name, type=discord.ChannelType.public_thread,
                                                auto_archive_duration=1440, reason=f"/chat with {spec.name}")
        except discord.Forbidden:
            await interaction.response.send_message("I'm not allowed to create threads here (Create Public Threads).", ephemeral=True)
            return
        record = await channel_store.record_chat_thread(bot.db, str(thread.id), spec.name, parent_channel_id=str(parent.id),
                                                        opened_by=str(interaction.user.id))
        bot.directory.add_thread(record)
        log.info("user %s opened thread %s with %s", interaction.user.id, thread.id, spec.name)
        await interaction.response.send_message(f"{spec.display_name} is waiting for you in {thread.mention}: just write, no mention needed.")
        if spec.greeting.strip():
            await self._greet(thread, spec, interaction.user.display_name)

    async def _greet(self, thread: discord.Thread, persona: PersonaSpec, member_name: str) -> None:
        """The persona's greeting (a card's first message) opens the thread, as the persona."""
        text = macros.resolve(persona.greeting, char=persona.display_name, user=member_name)
        parent = self.webhooks.usable_in(thread)
        hook = await self.webhooks.for_persona(parent, persona) if parent is not None else None
        sink = WebhookSink(hook, persona, thread) if hook is not None else ChannelSink(thread)
        try:
            for part in split_message(text):
                await sink.send(part)
        except (discord.HTTPException, MessageGone) as exc:   # the thread still works without it
            log.warning("could not post %s's greeting in thread %s: %s", persona.name, thread.id, type(exc).__name__)

    @app_commands.command(name="reset")
    async def reset(self, interaction: discord.Interaction) -> None:
        """Start this conversation afresh: the persona forgets the messages above."""
        await interaction.response.send_message(RESET_NOTICE)


class _Typing:
    """The typing indicator of one reply: shown only if no text is visible after TYPING_GRACE_S.

    A timer, not a task: most replies are on screen before the grace ends, and then the indicator
    costs one timer handle and no request.
    """

    __slots__ = ("_http", "_channel_id", "_timer", "_task")

    def __init__(self, http, channel_id: int):
        self._http = http
        self._channel_id = channel_id
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(TYPING_GRACE_S, self._start)

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                await self._http.send_typing(self._channel_id)
                await asyncio.sleep(TYPING_REFRESH_S)
        except discord.HTTPException as exc:  # cosmetic: never let typing break a reply
            log.debug("typing indicator failed in %s: HTTP %s", self._channel_id, exc.status)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None


class _Tracked:
    """Wraps a sink: the typing indicator stops once the first text is on screen, and each posted
    message is remembered as the answer to `answered` (history puts it back in its place)."""

    def __init__(self, sink, typing: _Typing, speakers: Speakers, answered: int):
        self._sink = sink
        self._typing = typing
        self._speakers = speakers
        self._answered = answered

    async def send(self, text: str):
        self._typing.cancel()
        handle = await self._sink.send(text)
        self._speakers.remember_answer(handle.id, self._answered)
        return handle

    async def edit(self, handle, text: str) -> None:
        await self._sink.edit(handle, text)
