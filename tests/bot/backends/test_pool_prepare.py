"""Backends are built off the event loop: a model load never stalls the loop (heartbeats, other chats).

A ticker measures how late the event loop wakes up while the pool builds a persona's local backend
(the tiny random Llama, loaded for real by `LocalBackend.from_spec`) through `prepare`; it must
never be more than 100 ms late. The same load done on the loop is measured too, to show the ticker
sees a blocking load.
"""
from __future__ import annotations

import asyncio
import logging
import time

from bot.backends.local import LocalBackend
from bot.backends.pool import BackendPool
from bot.persona import load_personas
from bot.persona.spec import ModelSpec

LAG_LIMIT_S = 0.100


class LagMeter:
    """Largest delay of a 5 ms timer while running."""

    def __init__(self, tick_s: float = 0.005):
        self.tick_s = tick_s
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick_s)
            self.worst = max(self.worst, time.perf_counter() - before - self.tick_s)

    async def __aenter__(self):
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc):
        await asyncio.sleep(0.02)
        self._task.cancel()


def _tiny_persona(settings, folder):
    tim = load_personas(settings.core.resolved_personas_dir())["tim"]
    return tim.model_copy(update={"model": ModelSpec(backend="local", model=str(folder))})


async def test_loading_a_model_in_prepare_keeps_the_event_loop_responsive(settings, tiny_llama_dir):
    settings.core.local_device = "cpu"
    persona = _tiny_persona(settings, tiny_llama_dir)
    pool = BackendPool(settings)
    try:
        assert pool.built(persona) is None
        async with LagMeter() as lag:
            backend = await pool.prepare(persona)
        assert isinstance(backend, LocalBackend)
        assert pool.built(persona) is backend and pool.for_persona(persona) is backend
        assert lag.worst < LAG_LIMIT_S, f"the event loop stalled {lag.worst * 1000:.0f} ms while a model loaded"
    finally:
        await pool.aclose()


async def test_the_lag_meter_sees_a_load_on_the_loop(settings, tiny_llama_dir):
    settings.core.local_device = "cpu"
    persona = _tiny_persona(settings, tiny_llama_dir)
    async with LagMeter() as lag:
        await asyncio.sleep(0)
        started = time.perf_counter()
        backend = LocalBackend.from_spec(persona.model, settings)   # blocking, on the loop: what must not happen
        blocked = time.perf_counter() - started
    await backend.aclose()
    # The ticker's sleep was under way when the load began, so it wakes at most one tick early of the
    # stall's end: it must report (nearly) all of it, however fast the load was on this machine.
    assert lag.worst >= blocked - 2 * lag.tick_s, \
        f"the meter saw {lag.worst * 1000:.0f} ms of a {blocked * 1000:.0f} ms stall"


async def test_prepare_all_logs_a_failing_persona_and_builds_the_rest(settings, tiny_llama_dir, caplog):
    caplog.set_level(logging.INFO, "bot.backends.pool")
    settings.core.local_device = "cpu"
    good = _tiny_persona(settings, tiny_llama_dir)
    bad = good.model_copy(update={"name": "broken", "model": ModelSpec(backend="local", model=str(tiny_llama_dir / "nope"))})
    pool = BackendPool(settings)
    try:
        await pool.prepare_all([bad, good])
        assert pool.built(good) is not None and pool.built(bad) is None
        assert "backend for persona broken failed to build" in caplog.text
        assert "building the local backend for tim" in caplog.text
    finally:
        await pool.aclose()
