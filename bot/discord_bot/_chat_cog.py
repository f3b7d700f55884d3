"""Chatting: when the bot answers, the streamed reply, 👍/👎 feedback, /chat and /reset.

Flow of a message: `on_message` drops bots, webhooks and system messages, asks the routing
`Directory` (synchronously, so arrival order is kept) whether and as whom to answer, and queues the
message on the cog's own `ConversationQueue`. The conversation's worker (`answer_batch`) gets every
message that arrived since its last reply, takes a generation slot (or posts the busy notice when
the queue is full), reads the history back from Discord, streams the engine's reply into Discord
under the bot's request budget, and hands the exchange to the one write path, `log_exchange`,
which stores it only if the member opted in.

Whatever Discord does, the member is answered or the channel is given up on knowingly:
- history that can't be read (403, 404, 5xx, timeout): the reply is built from the message itself
  and what the bot saw live; logged once per channel, listed by `/admin status`;
- 403 on sending (no Send Messages): one log line, and the channel is left alone (no requests)
  until its permissions change or the problem expires;
- a webhook deleted meanwhile: the reply goes out as the bot account (see `_io.WebhookSink`);
- any other failure to post a reply: a short notice in the channel, never silence.

Logs carry ids, lengths, persona names and error types, never message text.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.conversations import channel_health
from bot.conversations.budget import COSMETIC, NORMAL, URGENT
from bot.conversations.history import ChatMessage, HistoryItem, RecentMessages, in_reply_order, to_turns
from bot.conversations.notices import BUSY_NOTICE, REPLY_FAILED_NOTICE, RESET_NOTICE
from bot.conversations.routing import Incoming, Route
from bot.conversations.scheduling import Busy, ConversationQueue
from bot.conversations.streaming import render_stream
from bot.conversations.split import split_message
from bot.conversations.streaming import MessageGone
from bot.discord_bot._io import ChannelSink, Speakers, WebhookSink, Webhooks
from bot.persona import macros
from bot.persona.spec import PersonaSpec
from bot.store import channels as channel_store
from bot.store import twins as twin_store
from bot.store.exchanges import log_exchange
from bot.store.feedback import feedback_value, record_feedback

if TYPE_CHECKING:
    from bot.discord_bot.client import PersonaBot

log = logging.getLogger(__name__)

# Typing starts only if no text is visible after this long: a fast reply needs no indicator, and
# skipping it saves a request per message. A queued or slow generation shows it.
TYPING_GRACE_S = 0.25
TYPING_REFRESH_S = 8.0   # Discord shows typing for about 10 s per trigger
HISTORY_TIMEOUT_S = 5.0  # a history read slower than this is given up: the reply goes on without it


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
        self.queue: ConversationQueue[Pending] = ConversationQueue(self.answer_batch, on_error=self._conversation_failed)

    async def cog_unload(self) -> None:
        await self.queue.aclose()

    # -- incoming messages ----------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        bot = self.bot
        if bot.user is None:
            return
        # Every message is context, the bot's own and other bots' included.
        self.recent.add(message.channel.id, self.speakers.classify(message))
        if message.author.bot or message.webhook_id is not None:
            return  # never answer bots, webhooks (our personas included) or itself
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        route = bot.directory.route(self._incoming(message))
        if route is None:
            return
        if bot.channel_problems.has(message.channel.id, channel_health.SEND):
            return  # no Send Messages here: given up quietly (logged once when found)
        log.debug("queued message %s in %s for %s (%s)", message.id, route.conversation_key, route.persona, route.reason)
        bot.metrics.message(bot.persona(route.persona).name)
        self.queue.submit(route.conversation_key, Pending(message, route, time.monotonic()))

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
        if self.bot.user is not None:
            self.recent.edit(payload.channel_id, self.speakers.classify(payload.message))

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

    @commands.Cog.listener()
    async def on_guild_channel_update(self, before, after) -> None:
        self.bot.channel_problems.clear(after.id)   # permissions may have changed: try again

    @commands.Cog.listener()
    async def on_guild_role_update(self, before, after) -> None:
        self.bot.channel_problems.clear()

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

    def _conversation_failed(self, key, exc: BaseException) -> None:
        log.error("conversation %s: reply failed: %s", key, type(exc).__name__, exc_info=(type(exc), exc, exc.__traceback__))

    async def _answer(self, key: str, run: list[Pending]) -> None:
        bot = self.bot
        last = run[-1]
        message = last.message
        channel_id = message.channel.id
        if bot.channel_problems.has(channel_id, channel_health.SEND):
            return
        persona = bot.persona(last.route.persona)
        try:
            slot = bot.gate.slot()
        except Busy:
            log.warning("busy: %d generating, %d queued; refused message %s in %s",
                        bot.gate.running, bot.gate.waiting, message.id, key)
            bot.metrics.refused(persona.name)
            await self._post_notice(message, BUSY_NOTICE)
            return
        typing = _Typing(message.channel, bot.requests)
        started = time.monotonic()
        result = tracked = None
        try:
            async with slot:
                await bot.pool.prepare(persona)   # normally built at start-up; never on the event loop
                history = await self._history(message, persona)
                stream = bot.engine.respond(persona, to_turns(history, persona, bot.personas))
                sink = await self._sink(message, persona, reply=last.route.reason in ("mention", "reply"))
                tracked = _Tracked(sink, typing, self.speakers, message.id)
                result = await render_stream(stream, tracked, edit_interval_s=bot.settings.discord.edit_interval_s,
                                             pacer=bot.requests)
        except discord.Forbidden as exc:
            typing.cancel()
            if tracked is None or not tracked.posted:
                self._cannot_send(channel_id, exc)
            else:
                log.warning("reply to message %s in %s refused mid-way: HTTP 403 (code %s)", message.id, key, exc.code)
                await self._post_notice(message, REPLY_FAILED_NOTICE)
            return
        except discord.HTTPException as exc:
            log.warning("reply to message %s in %s failed: HTTP %s (code %s)", message.id, key, exc.status, exc.code)
            await self._post_notice(message, REPLY_FAILED_NOTICE)
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

    def _cannot_send(self, channel_id: int, exc: discord.HTTPException) -> None:
        if self.bot.channel_problems.report(channel_id, channel_health.SEND, f"HTTP {exc.status}, code {exc.code}"):
            log.warning("no permission to send in channel %s (HTTP %s, code %s): not answering there until its "
                        "permissions change", channel_id, exc.status, exc.code)

    async def _history(self, message: discord.Message, persona: PersonaSpec) -> list[ChatMessage]:
        """The conversation read back from Discord, oldest first, ending with `message`.

        Never fails: what cannot be read is left out, and the reply goes on with what is known.
        """
        limit = history_limit(persona)
        if message.reference is not None and message.reference.message_id is not None:
            items = await self._reply_chain(message, limit)
        else:
            channel_id = message.channel.id
            recent = self.recent.get(channel_id, limit)
            if recent is None:
                # First reply in this channel since start-up: read it back once; events keep it current.
                if await self._seed(message.channel):
                    recent = self.recent.get(channel_id, limit) or []
                else:
                    recent = self.recent.held(channel_id, limit)
            items = in_reply_order(self.speakers.classify(message), recent, self.speakers.answered)
        return [item.chat for item in items]

    async def _seed(self, channel) -> bool:
        """Read the channel's history into the recent window; False when Discord won't give it."""
        problems = self.bot.channel_problems
        if problems.has(channel.id, channel_health.HISTORY):
            return False
        try:
            # The slot first: waiting for our own budget is not Discord being slow.
            async with self.bot.requests.slot(NORMAL):
                async with asyncio.timeout(HISTORY_TIMEOUT_S):
                    messages = [m async for m in channel.history(limit=self.recent.per_channel)]
        except discord.HTTPException as exc:
            need = channel_health.HISTORY if exc.status in (403, 404) else channel_health.UNREADABLE
            if problems.report(channel.id, need, f"HTTP {exc.status}, code {exc.code}"):
                log.warning("cannot read the history of channel %s (HTTP %s, code %s): answering from the message "
                            "itself and what the bot saw live", channel.id, exc.status, exc.code)
            return False
        except TimeoutError:
            if problems.report(channel.id, channel_health.UNREADABLE, f"no answer in {HISTORY_TIMEOUT_S:.0f} s"):
                log.warning("history of channel %s did not arrive within %.0f s: answering from the message itself",
                            channel.id, HISTORY_TIMEOUT_S)
            return False
        problems.clear(channel.id, channel_health.UNREADABLE)
        self.recent.seed(channel.id, [self.speakers.classify(m) for m in messages])
        return True

    async def _reply_chain(self, message: discord.Message, limit: int) -> list[HistoryItem]:
        """The message, what it replies to, what that replies to... (oldest first)."""
        channel = message.channel
        chain = [HistoryItem(self.speakers.classify(message).chat, message.reference.message_id, False)]
        resolved = message.reference.resolved
        while len(chain) < limit:
            last = chain[-1]
            # A persona's webhook post carries no reference: we remember what it answered.
            ref_id = self.speakers.answered.get(last.chat.id, last.reference) if last.ours else last.reference
            if ref_id is None:
                break
            item = self.recent.find(channel.id, ref_id)
            if item is None and isinstance(resolved, discord.Message) and resolved.id == ref_id:
                item = self.speakers.classify(resolved)   # the gateway delivered the replied-to message
            if item is None:
                try:
                    async with self.bot.requests.slot(NORMAL):
                        async with asyncio.timeout(HISTORY_TIMEOUT_S):
                            item = self.speakers.classify(await channel.fetch_message(ref_id))
                except (discord.HTTPException, TimeoutError) as exc:
                    status = getattr(exc, "status", "timeout")
                    if status == 403 and self.bot.channel_problems.report(channel.id, channel_health.HISTORY, "HTTP 403"):
                        log.warning("cannot read messages of channel %s (HTTP 403): the reply chain ends there", channel.id)
                    break  # deleted or not readable: the chain ends here
            chain.append(item)
        chain.reverse()
        return chain

    async def _sink(self, message: discord.Message, persona: PersonaSpec, *, reply: bool):
        fallback = ChannelSink(message.channel, message if reply else None)
        parent = self.webhooks.usable_in(message.channel)
        if parent is not None:
            async with self.bot.requests.slot(NORMAL):
                hook = await self.webhooks.for_persona(parent, persona)
            if hook is not None:
                thread = message.channel if isinstance(message.channel, discord.Thread) else None
                return WebhookSink(hook, persona, thread, fallback, self.webhooks, parent.id)
        return fallback

    async def _post_notice(self, message: discord.Message, text: str) -> None:
        channel_id = message.channel.id
        if self.bot.channel_problems.has(channel_id, channel_health.SEND):
            return
        try:
            async with self.bot.requests.slot(URGENT):
                await message.channel.send(text, reference=message.to_reference(fail_if_not_exists=False),
                                           mention_author=False)
        except discord.Forbidden as exc:
            self._cannot_send(channel_id, exc)
        except discord.HTTPException as exc:
            log.warning("could not post a notice in %s: HTTP %s", channel_id, exc.status)

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
        if await twin_store.get_twin(bot.db, spec.name) is not None and spec.name not in await twin_store.shared_in(bot.db, str(parent.id)):
            await interaction.response.send_message(f"{spec.display_name} is a digital twin and isn't shared in this channel.",
                                                    ephemeral=True)
            return
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
        fallback = ChannelSink(thread)
        sink = fallback
        if parent is not None:
            async with self.bot.requests.slot(NORMAL):
                hook = await self.webhooks.for_persona(parent, persona)
            if hook is not None:
                sink = WebhookSink(hook, persona, thread, fallback, self.webhooks, parent.id)
        try:
            for part in split_message(text):
                async with self.bot.requests.slot(URGENT):
                    await sink.send(part)
        except (discord.HTTPException, MessageGone) as exc:   # the thread still works without it
            log.warning("could not post %s's greeting in thread %s: %s", persona.name, thread.id, type(exc).__name__)

    @app_commands.command(name="reset")
    async def reset(self, interaction: discord.Interaction) -> None:
        """Start this conversation afresh: the persona forgets the messages above."""
        await interaction.response.send_message(RESET_NOTICE)


class _Typing:
    """The typing indicator of one reply: shown only if no text is visible after TYPING_GRACE_S,
    and only when the request budget has room at once (it is cosmetic).

    A timer, not a task: most replies are on screen before the grace ends, and then the indicator
    costs one timer handle and no request.
    """

    __slots__ = ("_channel", "_budget", "_timer", "_task")

    def __init__(self, channel: discord.abc.Messageable, budget):
        self._channel = channel
        self._budget = budget
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(TYPING_GRACE_S, self._start)

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                if self._budget.try_acquire(COSMETIC):
                    with self._budget.prepaid_slot(COSMETIC):
                        await self._channel.typing()
                await asyncio.sleep(TYPING_REFRESH_S)
        except discord.HTTPException as exc:  # cosmetic: never let typing break a reply
            log.debug("typing indicator failed in %s: HTTP %s", self._channel.id, exc.status)

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
        self.posted = False

    async def send(self, text: str):
        self._typing.cancel()
        handle = await self._sink.send(text)
        self.posted = True
        self._speakers.remember_answer(handle.id, self._answered)
        return handle

    async def edit(self, handle, text: str) -> None:
        await self._sink.edit(handle, text)
