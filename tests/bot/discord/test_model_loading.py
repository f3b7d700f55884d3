"""While a persona's model loads, the bot keeps its event loop free: heartbeats, other chats, /admin status.

Through the fake Discord: EVE is switched to a real local model (the tiny random Llama) as a
registry change would do; while the pool builds it, a 5 ms ticker on the bot's event loop must
never be more than 100 ms late, and TIM still answers in another channel. `/admin status` never
loads a model: it says the persona is not loaded yet.
"""
from __future__ import annotations

import asyncio
import time

from bot.persona.spec import ModelSpec
from tests.bot.backends.test_pool_prepare import LAG_LIMIT_S, LagMeter


async def test_a_model_loading_never_stalls_the_bot(harness, tiny_llama_dir):
    h = harness
    h.settings.core.local_device = "cpu"
    eve = h.bot.personas["eve"]
    h.bot.pool.unpin("eve")
    h.bot.pool.set_model_override("eve", ModelSpec(backend="local", model=str(tiny_llama_dir)))
    real_factory = h.bot.pool.factories["local"]

    def load_like_a_first_start(model, settings):
        # The real load, plus the seconds a first start spends fetching and converting.
        backend = real_factory(model, settings)
        time.sleep(1.5)
        return backend

    h.bot.pool.factories["local"] = load_like_a_first_start

    status = await h.fake.slash(h.general, h.admin, "admin", "status")
    await h.fake.wait_for(lambda: status.followups, what="/admin status")
    assert "not loaded yet" in status.text
    assert h.bot.pool.built(eve) is None, "/admin status must not load a model"

    h.backend.enqueue(["TIM answers meanwhile."])
    async with LagMeter() as lag:
        loading = asyncio.create_task(h.bot.pool.prepare(eve))
        await asyncio.sleep(0.01)
        await h.say(h.general, h.alice, "are you there?", mention=True)
        await h.fake.wait_for(lambda: h.fake.bot_messages(h.general), timeout=10, what="TIM's reply")
        answered_while_loading = not loading.done()
        backend = await loading
    assert lag.worst < LAG_LIMIT_S, f"the event loop stalled {lag.worst * 1000:.0f} ms while a model loaded"
    assert answered_while_loading, "TIM's reply should not have waited for EVE's model"
    assert h.bot.pool.built(eve) is backend and backend.model_name
    await h.settle()
