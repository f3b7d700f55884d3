"""The serving journey with the real embedded SmolLM2, through the fake Discord (slow: real weights on CPU).

The persona is served by the real local backend, built by the bot in a worker thread; while it
loads, the bot's event loop is never more than 100 ms late. Then, in a channel where the bot may
not read history and where the fake enforces Discord's rate limits, a member's question gets a real,
complete answer from the model, with no 429.
"""
from __future__ import annotations

import asyncio

import pytest

from bot.backends.local import LocalBackend
from tests.bot.backends.test_pool_prepare import LAG_LIMIT_S, LagMeter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


async def test_real_model_loads_off_the_loop_and_answers_without_history_under_limits(harness, real_models_dir):
    h = harness
    h.settings.core.models_dir_override = real_models_dir
    h.settings.core.local_device = "cpu"
    tim = h.bot.personas["tim"]
    assert tim.model.backend == "local"
    h.bot.pool.unpin("tim")
    tim_sampling = tim.sampling.model_copy(update={"max_tokens": 24, "temperature": 0.0})
    h.bot.personas["tim"] = tim.model_copy(update={"sampling": tim_sampling})

    async with LagMeter() as lag:
        backend = await h.bot.pool.prepare(h.bot.personas["tim"])
    assert isinstance(backend, LocalBackend) and "smollm2" in backend.model_name.lower()
    assert lag.worst < LAG_LIMIT_S, f"the event loop stalled {lag.worst * 1000:.0f} ms while SmolLM2 loaded"

    h.fake.enforce_limits(global_per_s=50, channel_messages=(5, 5.0))
    await h.fake.deny_bot(h.general, "read_message_history")
    await asyncio.sleep(0.1)
    await h.say(h.general, h.alice, "What is photosynthesis? Answer in one sentence.", mention=True)
    await h.fake.wait_for(lambda: h.fake.bot_messages(h.general), timeout=600, what="the real model's reply")
    await asyncio.wait_for(h.bot.conversations.drain(), 600)
    reply = h.fake.bot_messages(h.general)[0]["content"]
    assert reply.strip() and reply != tim.error_reply and reply != tim.empty_reply
    assert h.fake.rate_limited == []

