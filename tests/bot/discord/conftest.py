"""The Discord harness: the fake Discord on loopback + the real `PersonaBot`, connected and ready.

`harness` starts `tests/support/fake_discord.FakeDiscord`, points discord.py at it through the
product's own settings (DISCORD_API_BASE / DISCORD_GATEWAY_URL → `apply_endpoints`), builds the bot
exactly as the entry point does, with every persona served by one `ScriptedBackend`, and waits for
READY. Any exception discord.py would swallow (`on_error`, `tree.on_error`, a view's error log) or
any ERROR log record fails the test at teardown; a refused permission check is an expected outcome,
not an error.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field

import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.backends.pool import BackendPool
from bot.discord_bot import PersonaBot, apply_endpoints
from bot.engine import ChatEngine
from bot.persona import load_personas
from bot.settings import DiscordSettings
from tests.support.fake_discord import FakeDiscord
from tests.support.scripted_backend import ScriptedBackend


class _ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Harness:
    fake: FakeDiscord
    bot: PersonaBot
    backend: ScriptedBackend
    db: object
    settings: object
    general: int
    other: int
    hooks: int            # a channel where the bot may manage webhooks
    alice: int
    bob: int
    admin: int
    errors: list = field(default_factory=list)

    async def say(self, channel: int, author: int, text: str, *, mention: bool = False, reply_to: int | None = None) -> int:
        """A member writes; returns once the bot has received the message (not answered it)."""
        seen = asyncio.ensure_future(self.bot.wait_for(
            "message", check=lambda m: m.author.id == author and m.content.endswith(text), timeout=5))
        await asyncio.sleep(0)  # register the waiter before the event can arrive
        msg = await self.fake.member_message(channel, author, text, mention_bot=mention, reply_to=reply_to)
        await seen
        for _ in range(3):      # let the cog's listener task run and queue the message
            await asyncio.sleep(0)
        return int(msg["id"])

    async def settle(self) -> None:
        """Wait until every queued conversation has been answered."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self.bot.conversations.drain(), 10)

    async def reply_text(self, channel: int, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Texts of the bot's messages in `channel` once there are `count` and the bot is idle."""
        await self.fake.wait_for(lambda: len(self.fake.bot_messages(channel)) >= count, timeout, f"{count} bot message(s)")
        await self.settle()
        return [m["content"] for m in self.fake.bot_messages(channel)]

    async def opt_in(self, user: int, channel: int | None = None) -> None:
        record = await self.fake.slash(channel or self.general, user, "consent")
        await asyncio.wait_for(record.done.wait(), 5)
        click = await self.fake.click(record, user, "personabot:consent:opt-in")
        await asyncio.wait_for(click.done.wait(), 5)


@pytest.fixture
async def harness(settings, db, monkeypatch):
    fake = FakeDiscord()
    alice, bob, admin = fake.add_member("alice"), fake.add_member("bob"), fake.add_member("admin", admin=True)
    general, other = fake.add_channel("general"), fake.add_channel("other")
    hooks = fake.add_channel("personas", bot_can_manage_webhooks=True)
    await fake.start()

    # apply_endpoints changes two class constants: let monkeypatch put them back afterwards.
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    settings.discord = DiscordSettings(token="fake-token", api_base=fake.api_base, gateway_url=fake.gateway_url,
                                       dev_guild=fake.guild_id, edit_interval_s=0.05)
    apply_endpoints(settings.discord)
    assert Route.BASE == fake.api_base and DiscordWebSocket.DEFAULT_GATEWAY == yarl.URL(fake.gateway_url)

    personas = load_personas(settings.core.resolved_personas_dir())
    backend = ScriptedBackend()
    pool = BackendPool(settings)
    for name in personas:
        pool.pin(name, backend)
    engine = ChatEngine(pool.for_persona, other_persona_labels=[l for p in personas.values() for l in p.labels])
    bot = PersonaBot(settings=settings, db=db, pool=pool, engine=engine, personas=personas, guild_ready_timeout=0.01)

    errors: list = []

    async def on_error(event, *args, **kwargs):
        errors.append(f"on_error in {event}: {sys.exc_info()[1]!r}")

    original_tree_error = bot.tree.on_error

    async def tree_error(interaction, error):
        if not isinstance(error, app_commands.CheckFailure):
            errors.append(f"tree.on_error: {error!r}")
        await original_tree_error(interaction, error)

    bot.on_error = on_error
    bot.tree.on_error = tree_error
    error_log = _ErrorLog()
    logging.getLogger().addHandler(error_log)

    h = Harness(fake, bot, backend, db, settings, general, other, hooks, alice, bob, admin, errors)
    try:
        async with bot:
            task = asyncio.create_task(bot.start("fake-token"))
            done, _ = await asyncio.wait({task, asyncio.ensure_future(bot.wait_until_ready())}, timeout=10,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
            assert bot.is_ready(), "the bot never became ready against the fake Discord"
            yield h
            await bot.close()
            await asyncio.wait_for(task, 10)
    finally:
        logging.getLogger().removeHandler(error_log)
        await fake.stop()
        await pool.aclose()
    problems = errors + [f"{r.name}: {r.getMessage()}" for r in error_log.records]
    assert not problems, "errors swallowed during the test:\n" + "\n".join(problems)
