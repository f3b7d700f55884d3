"""`personabot run`: with a token it connects through the product settings; without one it does not."""
import asyncio

import click
import pytest
import typer
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.cli.run import serve_discord
from bot.settings import DiscordSettings
from tests.support.fake_discord import FakeDiscord


async def test_serve_discord_connects_to_the_configured_server(settings, monkeypatch):
    fake = FakeDiscord()
    await fake.start()
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    settings.discord = DiscordSettings(token="fake-token", api_base=fake.api_base, gateway_url=fake.gateway_url)
    task = asyncio.create_task(serve_discord(settings, bot_options={"guild_ready_timeout": 0.01}))
    try:
        await asyncio.wait_for(fake.identified.wait(), 10)
        # No DISCORD_DEV_GUILD: commands are synced globally.
        assert ("PUT", f"applications/{fake.app_id}/commands") in fake.requests
        assert settings.core.db_path.exists()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await fake.stop()


def test_run_without_token_needs_the_terminal_chat(settings, monkeypatch):
    import sys

    from bot.cli import run as run_module

    monkeypatch.setitem(sys.modules, "bot.cli.chat", None)     # as on a build without the terminal chat
    ctx = typer.Context(click.Command("run"), obj=settings)
    with pytest.raises(typer.Exit):
        run_module.run(ctx, persona=None)
