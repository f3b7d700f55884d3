"""`personabot run`: serve the personas on Discord, or chat in the terminal when no token is set.

With DISCORD_TOKEN set, this is the entry point that owns every lifetime: it builds the settings
(done by the CLI root), points discord.py at DISCORD_API_BASE / DISCORD_GATEWAY_URL when set, opens
the database, the backend pool and the engine, hands them to the bot, and closes them in reverse
order with `async with` when the bot stops.
"""
from __future__ import annotations

import logging

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


async def _serve(settings, personas, labels, bot_options) -> None:
    import discord

    from bot.backends.pool import BackendPool
    from bot.discord_bot import PersonaBot
    from bot.engine import ChatEngine
    from bot.serving.model_sync import ModelSync
    from bot.store import open_db

    async with open_db(settings.core.db_path) as db:
        pool = BackendPool(settings)
        sync = ModelSync(db, pool, personas)
        try:
            engine = ChatEngine(pool.for_persona, other_persona_labels=labels)
            # Serve each persona's active registry version (and re-register vLLM adapters) before connecting.
            await sync.start()
            async with PersonaBot(settings=settings, db=db, pool=pool, engine=engine, personas=personas,
                                  model_sync=sync, **(bot_options or {})) as bot:
                try:
                    await bot.start(settings.discord.token)
                except discord.LoginFailure:
                    raise fail("Discord refused the token: check DISCORD_TOKEN (Developer Portal → Bot → Reset Token).")
                except discord.PrivilegedIntentsRequired:
                    raise fail("Enable the Message Content intent: Developer Portal → Bot → Privileged Gateway Intents.")
        finally:
            await sync.aclose()
            await pool.aclose()


def register(app: typer.Typer) -> None:
    app.command("run")(run)
