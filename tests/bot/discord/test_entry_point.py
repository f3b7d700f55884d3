"""`personabot run`: with a token it connects through the product settings; without one it does not."""
import asyncio
import shutil

import click
import pytest
import typer
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.cli.run import serve_discord
from bot.settings import DiscordSettings
from tests.support.fake_discord import FakeDiscord


def _personas_on_vllm(src, dest):
    """The shipped personas served by a (never contacted) vLLM server: building that backend is
    instant, where the shipped local model would load for real before the bot connects."""
    shutil.copytree(src, dest)
    for spec in dest.glob("*/persona.toml"):
        spec.write_text(spec.read_text(encoding="utf-8").replace('backend = "local"', 'backend = "vllm"'), encoding="utf-8")
    return dest


async def test_serve_discord_connects_to_the_configured_server(settings, monkeypatch, tmp_path):
    settings.core.personas_dir = _personas_on_vllm(settings.core.resolved_personas_dir(), tmp_path / "personas")
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


def test_run_without_token_opens_the_terminal_chat(settings, monkeypatch):
    from bot.cli import chat as chat_module
    from bot.cli import run as run_module

    calls = []
    monkeypatch.setattr(chat_module, "run_terminal_chat", lambda s, name: calls.append((s, name)) or 3)
    ctx = typer.Context(click.Command("run"), obj=settings)
    with pytest.raises(typer.Exit) as exit_info:
        run_module.run(ctx, persona=None)
    assert calls == [(settings, "tim")]
    assert exit_info.value.exit_code == 3       # the chat's exit code is the command's
