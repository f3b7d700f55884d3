"""ConversationQueue folding and order; GenerationGate bounds."""
import asyncio

import pytest

from bot.conversations.scheduling import Busy, ConversationQueue, GenerationGate


async def test_batches_fold_and_keep_order_per_key():
    seen = []
    release = asyncio.Event()

    async def handler(key, batch):
        seen.append((key, list(batch)))
        if batch == [1]:
            await release.wait()

    q = ConversationQueue(handler)
    q.submit("a", 1)
    await asyncio.sleep(0)
    q.submit("a", 2)
    q.submit("a", 3)
    q.submit("b", 10)
    await asyncio.sleep(0.01)
    assert ("b", [10]) in seen and ("a", [2, 3]) not in seen
    release.set()
    await q.drain()
    assert [b for k, b in seen if k == "a"] == [[1], [2, 3]]
    assert q.active == 0


async def test_a_failing_batch_does_not_stop_the_conversation():
    errors, seen = [], []

    async def handler(key, batch):
        seen.append(batch)
        if batch == ["bad"]:
            raise ValueError("x")

    q = ConversationQueue(handler, on_error=lambda k, e: errors.append(type(e)))
    q.submit("a", "bad")
    await asyncio.sleep(0)
    q.submit("a", "good")
    await q.drain()
    assert errors == [ValueError] and seen[-1] == ["good"]


async def test_gate_bounds_running_and_waiting():
    gate = GenerationGate(max_concurrent=2, max_queue=1)
    started = asyncio.Event()
    release = asyncio.Event()

    async def work():
        async with gate.slot():
            started.set()
            await release.wait()

    tasks = [asyncio.create_task(work()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert gate.running == 2 and gate.waiting == 1
    with pytest.raises(Busy):
        gate.slot()
    release.set()
    await asyncio.gather(*tasks)
    assert gate.running == 0 and gate.waiting == 0
