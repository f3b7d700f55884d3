"""`ChatEngine.interrupt`: shutdown ends a streaming reply with the notice, and later ones get only it."""
import asyncio

import pytest

from bot.engine import ChatEngine
from bot.engine.types import Turn
from bot.observability.metrics import BotMetrics
from bot.persona import load_personas
from tests.conftest import REPO
from tests.support.scripted_backend import ScriptedBackend


def _persona():
    return load_personas([REPO / "personas"])["tim"]


async def test_interrupt_mid_stream_keeps_the_text_and_appends_the_notice():
    backend = ScriptedBackend(delay_s=0.05)
    backend.enqueue([f"w{i} " for i in range(100)])
    metrics = BotMetrics()
    engine = ChatEngine(lambda p: backend, metrics=metrics)
    persona = _persona()
    stream = engine.respond(persona, [Turn("1", "ana", "hi")])
    seen = []

    async def consume():
        async for delta in stream:
            seen.append(delta)

    task = asyncio.create_task(consume())
    while len(seen) < 3:
        await asyncio.sleep(0.01)
    engine.interrupt("[restarting]")
    await asyncio.wait_for(task, 1)  # the pending backend read is cancelled, not waited out
    reply = stream.reply
    assert reply.interrupted and reply.error
    assert reply.text.endswith("\n\n[restarting]") and reply.text.startswith("w0 w1")
    assert "".join(seen) == reply.text
    # A later reply does not reach the backend at all.
    later = engine.respond(persona, [Turn("1", "ana", "again")])
    assert await later.text() == "[restarting]" and later.reply.interrupted
    assert len(backend.calls) == 1
    from prometheus_client import generate_latest
    text = generate_latest(metrics.registry).decode()
    assert 'personabot_replies_total{outcome="interrupted",persona="tim"} 2.0' in text


async def test_consumer_stopping_early_closes_the_backend_stream():
    closed = asyncio.Event()

    class Endless(ScriptedBackend):
        async def stream(self, messages, params):
            try:
                while True:
                    yield "TIM: hi "   # a second label line ends the reply through the cleaner...
                    await asyncio.sleep(0.01)
                    yield "\nUser: more"
            finally:
                closed.set()

    engine = ChatEngine(lambda p: Endless())
    text = await engine.respond(_persona(), [Turn("1", "ana", "hi")]).text()
    assert text and "User:" not in text
    await asyncio.wait_for(closed.wait(), 1)


@pytest.mark.slow
async def test_shutdown_interrupts_the_real_model_mid_reply(real_models_dir, settings):
    """SmolLM2 on the CPU: the notice ends the reply at once and the generation thread stops."""
    import threading

    from bot.backends.local import _WORKER_NAME, LocalBackend
    from bot.persona.spec import ModelSpec
    from bot.settings import load_settings

    real = load_settings(data_dir=settings.core.data_dir, models_dir_override=real_models_dir, local_device="cpu")
    backend = LocalBackend.from_spec(ModelSpec(), real)
    persona = _persona()
    persona = persona.model_copy(update={"sampling": persona.sampling.model_copy(update={"max_tokens": 400, "temperature": 0.0})})
    engine = ChatEngine(lambda p: backend)
    stream = engine.respond(persona, [Turn("1", "ana", "Tell me a long story about a dragon who learns to read.")])
    seen = []

    async def consume():
        async for delta in stream:
            seen.append(delta)

    task = asyncio.create_task(consume())
    try:
        while len("".join(seen)) < 20:
            assert not task.done(), stream.reply
            await asyncio.sleep(0.05)
        interrupted_at = asyncio.get_running_loop().time()
        engine.interrupt("[restarting]")
        await asyncio.wait_for(task, 5)
        assert asyncio.get_running_loop().time() - interrupted_at < 2
        assert stream.reply.interrupted and stream.reply.text.endswith("\n\n[restarting]")
        def workers():
            return [t for t in threading.enumerate() if t.name == _WORKER_NAME and t.is_alive()]

        for _ in range(100):   # the worker notices the cancelled stream and stops generating
            if not workers():
                break
            await asyncio.sleep(0.1)
        assert not workers()
        assert backend.last_stats.finish_reason == "cancelled" and backend.last_stats.new_tokens < 400
    finally:
        await backend.aclose()
