"""`PersonaBot`: the `commands.Bot` subclass the entry point builds.

Lifetimes: the entry point opens the database, the backend pool and the engine, passes them in and
closes them after the bot (`async with PersonaBot(...) as bot: await bot.start(token)`). The bot owns
only in-process state: the routing directory, the generation gate, the Discord request budget
(`requests`: every REST call discord.py makes passes through it, see `_requests`) and the channels
where Discord refused something (`channel_problems`). The chat cog owns the conversation queue.
Cogs are loaded, the consent view registered (persistent across restarts) and slash commands synced
in `setup_hook`: to DISCORD_DEV_GUILD when set (instant), else globally.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Sequence

import aiosqlite
import discord
from discord import app_commands
from discord.ext import commands

from bot.backends.pool import BackendPool
from bot.conversations.budget import RequestBudget
from bot.conversations.channel_health import ChannelProblems
from bot.conversations.routing import Directory
from bot.conversations.scheduling import ConversationQueue, GenerationGate
from bot.discord_bot._requests import request_trace
from bot.engine import ChatEngine
from bot.persona.spec import PersonaSpec
from bot.settings import Settings

log = logging.getLogger(__name__)

ForgetHook = Callable[[aiosqlite.Connection, str], Awaitable[None]]


class PersonaTree(app_commands.CommandTree):
    """Answers expected command failures (a missing permission, a DM-only misuse) to the member;
    logs anything else as an error, by type and command only."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You can't use this command here."
            log.info("command %s refused for user %s: %s", _command_name(interaction), interaction.user.id, type(error).__name__)
        else:
            original = getattr(error, "original", error)
            log.error("command %s failed: %s", _command_name(interaction), type(original).__name__,
                      exc_info=(type(original), original, original.__traceback__))
            text = "Something went wrong on my side; the admins can find it in the logs."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:  # the interaction may have expired; nothing more to tell
            log.warning("could not report command error: HTTP %s", exc.status)


def _command_name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "?"


class PersonaBot(commands.Bot):
    def __init__(
        self,
        *,
        settings: Settings,
        db: aiosqlite.Connection,
        pool: BackendPool,
        engine: ChatEngine,
        personas: dict[str, PersonaSpec],
        forget_hooks: Sequence[ForgetHook] | None = None,
        model_sync=None,
        metrics=None,
        **options,
    ):
        if not personas:
            raise ValueError("no personas to serve: add a persona folder with a persona.toml")
        intents = discord.Intents.default()
        intents.message_content = True   # privileged: enable it for the application (see docs_discord_setup.md)
        # A persona's words must never ping anyone: models can write @everyone or <@id>.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        # One budget for every REST request, discord.py's own included (its HTTP session's trace hooks).
        self.requests = RequestBudget(settings.discord.requests_per_second)
        options.setdefault("http_trace", request_trace(self.requests))
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=PersonaTree,
                         help_command=None, **options)
        self.settings = settings
        self.db = db
        self.pool = pool
        self.engine = engine
        self.personas = dict(personas)
        self.forget_hooks = forget_hooks          # None: bot.store.privacy.DEFAULT_HOOKS (trainer propagation)
        self.model_sync = model_sync              # bot.serving.model_sync.ModelSync, when the entry point made one
        from bot.observability.metrics import BotMetrics
        self.metrics = metrics if metrics is not None else BotMetrics()   # the entry point serves its registry
        self.requests.observers.append(self.metrics.discord_request)     # every request, by route class and status
        self.taking_messages = True               # False once shutdown began: member messages are ignored
        self._background: list[asyncio.Task] = []
        default = settings.core.default_persona
        if default not in self.personas:
            default = sorted(self.personas)[0]
            log.warning("default persona %r not found; using %r", settings.core.default_persona, default)
        self.default_persona = default
        self.directory = Directory(default, dms_enabled=settings.discord.dms_enabled)
        self.gate = GenerationGate(settings.discord.max_concurrent_generations, settings.discord.max_queue)
        self.channel_problems = ChannelProblems()
        # discord.py logs whole gateway events and request bodies at DEBUG, and aiosqlite every
        # statement with its parameters: both carry members' messages, which must never reach the
        # application logs of members who have not opted in, whatever the root log level.
        for name in ("discord", "aiosqlite"):
            library_log = logging.getLogger(name)
            if library_log.level < logging.INFO:  # NOTSET would inherit DEBUG from the root
                library_log.setLevel(logging.INFO)

    def add_persona(self, spec: PersonaSpec) -> None:
        """Serve a persona created while the bot runs (`/persona import`); names are never reused."""
        if spec.name in self.personas:
            raise ValueError(f"persona {spec.name!r} is already served")
        self.personas[spec.name] = spec
        known = {label.lower() for label in self.engine.other_persona_labels}
        self.engine.other_persona_labels.extend(label for label in spec.labels if label.lower() not in known)

    def retire_persona(self, name: str) -> None:
        """Stop serving a deleted persona (`/persona delete`, `/twin delete`): its channel bindings and
        chat threads go from the routing directory. Its name stays taken until a restart."""
        self.personas.pop(name, None)
        for channel_id in [c for c, b in self.directory.bindings.items() if b.persona == name]:
            self.directory.unbind(channel_id)
        for thread_id in [t for t, th in self.directory.threads.items() if th.persona == name]:
            self.directory.threads.pop(thread_id, None)

    @property
    def conversations(self) -> ConversationQueue:
        """The chat cog's conversation queue (status, draining in tests)."""
        return self.get_cog("ChatCog").queue

    def persona(self, name: str | None) -> PersonaSpec:
        """A persona by name, falling back to the default (a binding may outlive its persona)."""
        return self.personas.get(name or "") or self.personas[self.default_persona]

    async def setup_hook(self) -> None:
        from bot.discord_bot._admin_cog import AdminCog
        from bot.discord_bot._chat_cog import ChatCog
        from bot.discord_bot._consent_cog import ConsentCog, ConsentView
        from bot.discord_bot._curation_cog import CurateButton, CurationCog
        from bot.discord_bot._persona_cog import PersonaCog
        from bot.discord_bot._privacy_cog import PrivacyCog
        from bot.discord_bot._review_cog import EndButton, ReviewCog, VoteButton
        from bot.discord_bot._twin_cog import TwinCog

        # Before connecting: a model loads in a worker thread, and no heartbeat is due yet.
        log.info("preparing the model backends of %d persona(s) before connecting", len(self.personas))
        await self.pool.prepare_all(self.personas.values())
        await self.directory.load(self.db)
        for cog in (ChatCog(self), PersonaCog(self), ConsentCog(self), PrivacyCog(self), AdminCog(self), TwinCog(self)):
            await self.add_cog(cog)
        self.add_view(ConsentView(self))
        await self.add_cog(CurationCog(self))
        self.add_dynamic_items(CurateButton)   # review buttons keep working across restarts
        await self.add_cog(ReviewCog(self))
        self.add_dynamic_items(VoteButton, EndButton)   # model review buttons too
        await self.sync_commands()
        if self.model_sync is not None:
            # Promotions made by `personabot trainer` (another process) reach serving through the registry.
            self._background.append(asyncio.create_task(self.model_sync.run(), name="model-sync"))
        self._background.append(asyncio.create_task(self._post_training_notices(), name="training-notices"))

    async def _post_training_notices(self, interval_s: float = 30.0) -> None:
        """Post scheduled-training results to each persona's admin channel, when it has one."""
        from bot.serving.run_notices import RunNotices

        async def notify(persona_name: str, text: str) -> None:
            spec = self.personas.get(persona_name)
            channel_id = spec.schedule.admin_channel_id if spec else None
            if not channel_id:
                log.info("training result for %s (no admin channel set): %s", persona_name, text)
                return
            channel = self.get_channel(channel_id) or await self.fetch_channel(channel_id)
            await channel.send(text[:2000])

        notices = RunNotices(self.db, notify)
        await self.wait_until_ready()
        while True:
            try:
                await notices.poll()
            except Exception:  # a missing table or channel must not stop the bot
                log.exception("posting training notices failed")
            await asyncio.sleep(interval_s)

    async def sync_commands(self) -> None:
        guild_id = self.settings.discord.dev_guild
        if guild_id:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d slash commands to guild %s", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d slash commands globally (may take up to an hour to appear)", len(synced))

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d guild(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: messages are handled by the chat cog's listener only."""

    def stop_taking_messages(self) -> None:
        """Shutdown: ignore member messages from now on; replies already accepted go on."""
        self.taking_messages = False

    def dispatch(self, event_name: str, /, *args, **kwargs) -> None:
        if event_name == "message" and not self.taking_messages:
            return
        super().dispatch(event_name, *args, **kwargs)

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await super().close()      # removes the cogs: the chat cog stops its conversations
