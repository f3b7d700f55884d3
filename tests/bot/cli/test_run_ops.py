"""`personabot run` as it runs in production: a real subprocess against the fake Discord and a
loopback vLLM-compatible server, with /healthz, /metrics, JSON logs and SIGTERM mid-reply.

One bot process per test (start-up costs a few seconds): a conversation with an opted-in member
(a complete reply, then a backend failure), the metrics it leaves, then SIGTERM while a slow
reply streams. The process must exit 0 within PERSONABOT_SHUTDOWN_GRACE_S + 5 s, the member must
see either the complete reply or the text so far plus the shutdown notice, the database must pass
`PRAGMA integrity_check` with no half-written exchange, and no log line may carry what members wrote.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.conversations.notices import SHUTDOWN_NOTICE
from tests.support.fake_discord import FakeDiscord
from tests.support.openai_server import BASE_MODEL, FakeOpenAIServer

REPO = Path(__file__).resolve().parents[3]
GRACE_S = 2.0

PERSONA = f'''
display_name = "Sage"
description = "Test persona served by a vLLM-compatible server."
system_prompt = "You are Sage. Answer briefly."
[model]
backend = "vllm"
model = "{BASE_MODEL}"
[sampling]
max_tokens = 400
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BotProcess:
    def __init__(self, tmp_path: Path, fake: FakeDiscord, server: FakeOpenAIServer, grace_s: float):
        self.port = _free_port()
        personas = tmp_path / "personas" / "sage"
        personas.mkdir(parents=True)
        (personas / "persona.toml").write_text(PERSONA, encoding="utf-8")
        self.data_dir = tmp_path / "data"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
            "DISCORD_TOKEN": "fake-token", "DISCORD_API_BASE": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url,
            "DISCORD_DEV_GUILD": str(fake.guild_id), "DISCORD_EDIT_INTERVAL_S": "0.2",
            "PERSONABOT_DATA_DIR": str(self.data_dir), "PERSONABOT_PERSONAS_DIR": str(tmp_path / "personas"),
            "PERSONABOT_DEFAULT_PERSONA": "sage",
            "VLLM_BASE_URL": server.base_url, "VLLM_MAX_RETRIES": "0",
            "PERSONABOT_METRICS_PORT": str(self.port), "PERSONABOT_METRICS_HOST": "127.0.0.1",
            "PERSONABOT_LOG_FORMAT": "json", "PERSONABOT_LOG_LEVEL": "DEBUG",
            "PERSONABOT_SHUTDOWN_GRACE_S": str(grace_s),
        }
        self.cwd = tmp_path
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = b""

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli.main", "run", env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._stderr_task = asyncio.ensure_future(self.proc.stderr.read())
        self._stdout_task = asyncio.ensure_future(self.proc.stdout.read())

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{self.port}{path}") as response:
                return response.status, await response.text()

    async def wait_healthy(self, timeout: float = 60) -> list[dict]:
        """Poll /healthz until 200; returns the 503 bodies seen meanwhile."""
        deadline = time.monotonic() + timeout
        unhealthy = []
        while time.monotonic() < deadline:
            assert self.proc.returncode is None, (await self.output())[-3000:]
            try:
                status, body = await self.get("/healthz")
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
                continue
            if status == 200:
                assert json.loads(body) == {"status": "ok", "checks": {"discord": "ok", "database": "ok"}}
                return unhealthy
            assert status == 503
            unhealthy.append(json.loads(body))
            await asyncio.sleep(0.05)
        raise AssertionError("the bot never became healthy:\n" + (await self.output())[-3000:])

    async def output(self) -> str:
        if self.proc.returncode is None:
            return "(still running)"
        return (await self._stderr_task).decode() + (await self._stdout_task).decode()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def stack(tmp_path):
    fake = FakeDiscord()
    alice, bob = fake.add_member("alice"), fake.add_member("bob")
    general = fake.add_channel("general")
    await fake.start()
    server = FakeOpenAIServer()
    await server.start()
    bot = BotProcess(tmp_path, fake, server, GRACE_S)
    try:
        yield fake, server, bot, {"alice": alice, "bob": bob, "general": general}
    finally:
        await bot.stop()
        await server.close()
        await fake.stop()


def _samples(text: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def _value(samples, name, **labels) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


async def _reply_to(fake: FakeDiscord, channel: int, message_id: int, count: int, timeout: float = 20) -> dict:
    await fake.wait_for(lambda: len(fake.bot_messages(channel)) >= count, timeout, f"bot reply #{count}")
    return fake.bot_messages(channel)[count - 1]


async def test_health_metrics_and_sigterm_during_a_streaming_reply(stack):
    fake, server, bot, ids = stack
    alice, bob, general = ids["alice"], ids["bob"], ids["general"]
    await bot.start()
    unhealthy = await bot.wait_healthy()
    for body in unhealthy:  # before READY: 503 with the reason
        assert body["status"] == "unhealthy" and body["checks"]["discord"] == "not connected to the Discord gateway"

    # Alice opts in, so her exchanges are stored.
    record = await fake.slash(general, alice, "consent")
    await asyncio.wait_for(record.done.wait(), 10)
    click = await fake.click(record, alice, "personabot:consent:opt-in")
    await asyncio.wait_for(click.done.wait(), 10)

    # 1. A complete reply.
    server.enqueue_reply("Photosynthesis turns light into sugar.", delay_s=0.01)
    first = await fake.member_message(general, alice, "SECRET-ONE what is photosynthesis?", mention_bot=True)
    done = await _reply_to(fake, general, int(first["id"]), 1)
    await fake.wait_for(lambda: fake.bot_messages(general)[0]["content"] == "Photosynthesis turns light into sugar.", 10, "final edit")
    # 2. The backend fails: the persona's apology, counted as a backend error.
    server.fail(500)
    await fake.member_message(general, alice, "SECRET-TWO and respiration?", mention_bot=True)
    await _reply_to(fake, general, 0, 2)

    status, text = await bot.get("/metrics")
    assert status == 200
    samples = _samples(text)
    assert _value(samples, "personabot_messages_total", persona="sage") == 2
    assert _value(samples, "personabot_replies_total", persona="sage", outcome="ok") == 1
    assert _value(samples, "personabot_replies_total", persona="sage", outcome="error") == 1
    assert _value(samples, "personabot_reply_seconds_count", phase="first_text") == 2
    assert _value(samples, "personabot_reply_seconds_count", phase="complete") == 2
    assert _value(samples, "personabot_backend_errors_total", backend="vllm") == 1
    assert _value(samples, "personabot_queue_depth") == 0
    assert _value(samples, "personabot_discord_requests_total", route_class="message.create", status="200") >= 2
    assert _value(samples, "personabot_discord_requests_total", route_class="message.edit", status="200") >= 1
    assert _value(samples, "personabot_active_model_info", persona="sage", version="base") == 1
    # No label value is a user, channel or message id, or anything a member wrote.
    secrets = {str(alice), str(bob), str(general), first["id"], done["id"], "SECRET"}
    for family in samples.values():
        for sample in family:
            for value in sample.labels.values():
                assert not any(s in value for s in secrets), (sample.name, sample.labels)

    # 3. A slow reply (40 chunks, 0.25 s apart: 10 s), SIGTERM once it is visibly streaming.
    words = [f"word{i} " for i in range(40)]
    server.enqueue_reply(chunks=words, delay_s=0.25)
    await fake.member_message(general, alice, "SECRET-THREE tell me a long story", mention_bot=True)
    slow = await _reply_to(fake, general, 0, 3)
    await fake.wait_for(lambda: "word3" in fake.bot_messages(general)[2]["content"], 10, "the reply streaming")
    sent_at = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    status, body = await bot.get("/healthz")
    assert status == 503 and json.loads(body)["checks"]["discord"] == "shutting down"
    # A message after SIGTERM is not taken.
    await fake.member_message(general, bob, "SECRET-FOUR are you there?", mention_bot=True)
    code = await asyncio.wait_for(bot.proc.wait(), GRACE_S + 10)
    elapsed = time.monotonic() - sent_at
    output = await bot.output()
    assert code == 0, output[-3000:]
    assert elapsed <= GRACE_S + 5, elapsed

    # The member sees the text so far, ended by the notice; nothing answered Bob.
    messages = fake.bot_messages(general)
    assert len(messages) == 3, [m["content"] for m in messages]
    final = messages[2]["content"]
    assert final.endswith(SHUTDOWN_NOTICE), final
    shown = final[: -len(SHUTDOWN_NOTICE)].strip()
    assert shown and "".join(words).startswith(shown), shown
    assert int(slow["id"]) == int(messages[2]["id"])

    # The database: intact, exactly the one complete exchange, no half of any other.
    conn = sqlite3.connect(bot.data_dir / "personabot.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT role, content FROM messages ORDER BY id").fetchall()
    finally:
        conn.close()
    assert rows == [("user", "SECRET-ONE what is photosynthesis?"), ("assistant", "Photosynthesis turns light into sugar.")]

    # Logs: one JSON object per line, none carrying what members wrote (DEBUG level included).
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "level", "logger", "message"} <= set(entry)
        assert "SECRET" not in line and "photosynthesis" not in line.lower() and "word3" not in line
    assert any("SIGTERM" in json.loads(line)["message"] for line in lines)


@pytest.mark.slow
async def test_sigterm_while_the_real_model_streams(stack, tmp_path, real_models_dir):
    """SmolLM2 in the bot process (the CPU profile): SIGTERM mid-reply ends it with the notice in time."""
    fake, server, bot, ids = stack
    local = tmp_path / "personas" / "sage" / "persona.toml"
    local.write_text(
        'display_name = "Sage"\nsystem_prompt = "You are Sage, a storyteller. Tell long, detailed stories."\n'
        '[model]\nbackend = "local"\nmodel = "smollm2-135m-instruct"\n[sampling]\nmax_tokens = 600\ntemperature = 0.0\n',
        encoding="utf-8")
    bot.env.update({"PERSONABOT_MODELS_DIR": str(real_models_dir), "PERSONABOT_LOCAL_DEVICE": "cpu",
                    "OMP_NUM_THREADS": "2", "PERSONABOT_LOG_LEVEL": "INFO"})
    await bot.start()
    await bot.wait_healthy()
    general, alice = ids["general"], ids["alice"]
    await fake.member_message(general, alice, "Tell me a very long story about a lighthouse keeper.", mention_bot=True)
    await fake.wait_for(lambda: fake.bot_messages(general) and len(fake.bot_messages(general)[0]["content"]) > 40,
                        120, "the real model streaming")
    sent_at = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(bot.proc.wait(), GRACE_S + 15)
    elapsed = time.monotonic() - sent_at
    assert code == 0, (await bot.output())[-3000:]
    assert elapsed <= GRACE_S + 5, elapsed
    final = fake.bot_messages(general)[0]["content"]
    assert final.endswith(SHUTDOWN_NOTICE) and len(final) > len(SHUTDOWN_NOTICE) + 40, final
    conn = sqlite3.connect(bot.data_dir / "personabot.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    finally:
        conn.close()
