"""`personabot run`: serve the personas on Discord, or chat in the terminal when no token is set.

With DISCORD_TOKEN set, this is the entry point that owns every lifetime: it builds the settings
(done by the CLI root), points discord.py at DISCORD_API_BASE / DISCORD_GATEWAY_URL when set, opens
the database, the backend pool and the engine, hands them to the bot, and closes them in reverse
order with `async with` when the bot stops.

Operations (issue 12): with PERSONABOT_METRICS_PORT set it serves /healthz and /metrics
(`bot.observability.server`). On SIGTERM (or Ctrl-C) it shuts down gracefully: member messages are
ignored from then on, replies already accepted get PERSONABOT_SHUTDOWN_GRACE_S to finish, then the
engine ends the rest with a short notice (`SHUTDOWN_NOTICE`), the bot disconnects and the database
is closed; the process exits 0 within the grace period plus a few seconds. A second signal closes
at once.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import asynccontextmanager
from typing import AsyncIterator

import typer

from bot.cli.common import fail, run_async, settings_from

log = logging.getLogger(__name__)


def run(
    ctx: typer.Context,
    persona: str = typer.Option(None, "--persona", "-p", help="Persona for the terminal chat (default: PERSONABOT_DEFAULT_PERSONA)."),
) -> None:
    """Run the Discord bot (needs DISCORD_TOKEN); without a token, chat with a persona in the terminal."""
    settings = settings_from(ctx)
    if not settings.discord.token:
        from bot.cli.chat import run_terminal_chat

        code = run_terminal_chat(settings, persona or settings.core.default_persona)
        if code:
            raise typer.Exit(code)
        return
    try:
        run_async(serve_discord(settings))
    except KeyboardInterrupt:
        pass


async def serve_discord(settings, *, bot_options: dict | None = None) -> None:
    """Connect to Discord with every lifetime owned here; returns when the bot is closed."""
    from bot.discord_bot import apply_endpoints
    from bot.persona import PersonaError, load_personas
    from bot.store.backup import hold_database

    apply_endpoints(settings.discord)
    try:
        personas = load_personas(settings.core.persona_dirs())
    except PersonaError as exc:
        raise fail(str(exc))
    labels = [label for p in personas.values() for label in p.labels]
    # Held for the bot's life: `personabot db restore` refuses while it is.
    with hold_database(settings.core.db_path):
        await _serve(settings, personas, labels, bot_options)


#: After the grace period, how long interrupted replies get to post their final edit.
FINAL_EDIT_S = 3.0


async def _serve(settings, personas, labels, bot_options) -> None:
    import discord

    from bot.backends.pool import BackendPool
    from bot.discord_bot import PersonaBot
    from bot.engine import ChatEngine
    from bot.observability.metrics import BotMetrics
    from bot.serving.model_sync import ModelSync
    from bot.store import open_db

    metrics = BotMetrics()
    options = dict(bot_options or {})
    async with open_db(settings.core.db_path) as db:
        pool = BackendPool(settings)
        sync = ModelSync(db, pool, personas)
        try:
            engine = ChatEngine(pool.for_persona, other_persona_labels=labels, metrics=metrics)
            # Serve each persona's active registry version (and re-register vLLM adapters) before connecting.
            await sync.start()
            async with PersonaBot(settings=settings, db=db, pool=pool, engine=engine, personas=personas,
                                  model_sync=sync, metrics=metrics, **options) as bot:
                metrics.watch_queue(lambda: bot.gate.waiting + bot.conversations.pending)
                metrics.watch_models(lambda: {name: state["version"] for name, state in sync.state().items()})
                async with _ops_server(settings, metrics, bot, db), _on_signals(bot, engine, settings):
                    try:
                        await bot.start(settings.discord.token)
                    except discord.LoginFailure:
                        raise fail("Discord refused the token: check DISCORD_TOKEN (Developer Portal → Bot → Reset Token).")
                    except discord.PrivilegedIntentsRequired:
                        raise fail("Enable the Message Content intent: Developer Portal → Bot → Privileged Gateway Intents.")
        finally:
            await sync.aclose()
            await pool.aclose()
    log.info("stopped; database closed")


@asynccontextmanager
async def _ops_server(settings, metrics, bot, db) -> AsyncIterator[None]:
    """/healthz and /metrics while the bot runs, when PERSONABOT_METRICS_PORT is set."""
    from bot.observability.server import OpsServer, database_check

    if settings.core.metrics_port is None:
        yield
        return
    gateway = {"connected": False}

    async def on_connect() -> None:
        gateway["connected"] = True

    async def on_disconnect() -> None:
        gateway["connected"] = False

    for event, listener in (("on_connect", on_connect), ("on_resumed", on_connect), ("on_disconnect", on_disconnect)):
        bot.add_listener(listener, event)

    async def discord_check() -> str | None:
        if not bot.taking_messages:
            return "shutting down"
        if bot.is_closed():
            return "closed"
        if not (gateway["connected"] and bot.is_ready()):
            return "not connected to the Discord gateway"
        return None

    server = OpsServer(metrics.registry, {"discord": discord_check, "database": database_check(db)},
                       host=settings.core.metrics_host, port=settings.core.metrics_port)
    async with server:
        yield


@asynccontextmanager
async def _on_signals(bot, engine, settings) -> AsyncIterator[None]:
    """SIGTERM/SIGINT start `graceful_shutdown`; a second one closes the bot at once."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task] = []

    def on_signal(signame: str) -> None:
        if tasks:
            log.warning("%s again: closing now", signame)
            tasks.append(loop.create_task(bot.close()))
            return
        log.info("%s: shutting down within %gs", signame, settings.core.shutdown_grace_s)
        tasks.append(loop.create_task(graceful_shutdown(bot, engine, settings.core.shutdown_grace_s)))

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def graceful_shutdown(bot, engine, grace_s: float, *, final_edit_s: float = FINAL_EDIT_S) -> None:
    """Stop taking messages, give accepted replies `grace_s`, end the rest with a notice, close."""
    from bot.conversations.notices import SHUTDOWN_NOTICE

    bot.stop_taking_messages()
    try:
        await asyncio.wait_for(bot.conversations.drain(), grace_s)
        log.info("every reply finished; closing")
    except asyncio.TimeoutError:
        log.info("grace period of %gs over: ending %d conversation(s) with a notice", grace_s, bot.conversations.active)
        engine.interrupt(SHUTDOWN_NOTICE)
        try:
            await asyncio.wait_for(bot.conversations.drain(), final_edit_s)
        except asyncio.TimeoutError:
            log.warning("%d conversation(s) still busy after the notice; closing anyway", bot.conversations.active)
    await bot.close()


def register(app: typer.Typer) -> None:
    app.command("run")(run)
