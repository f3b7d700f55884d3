"""RequestBudget: under the rate in every window, evenly spaced, urgent first, 429s and buckets honoured."""
from __future__ import annotations

import asyncio
import time

import pytest

from bot.conversations.budget import COSMETIC, EDIT, NORMAL, URGENT, RequestBudget


async def test_never_more_than_the_rate_in_any_window():
    budget = RequestBudget(rate=20)
    times = []

    async def one():
        await budget.acquire(NORMAL)
        times.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(30)))
    times.sort()
    worst = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert worst <= 20
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.04, "grants are spaced, not bunched"
    assert times[-1] - times[0] >= 29 / 20 * 0.95


async def test_urgent_waiters_go_first():
    budget = RequestBudget(rate=50)
    assert budget.try_acquire(COSMETIC)           # the one free slot now
    order = []

    async def wait(priority, name):
        await budget.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(wait(EDIT, "edit1")), asyncio.create_task(wait(EDIT, "edit2"))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(wait(URGENT, "final")))
    tasks.append(asyncio.create_task(wait(NORMAL, "history")))
    await asyncio.gather(*tasks)
    assert order == ["final", "history", "edit1", "edit2"]


async def test_cosmetic_requests_are_skipped_while_others_wait():
    budget = RequestBudget(rate=10)
    assert budget.try_acquire()
    waiter = asyncio.create_task(budget.acquire(URGENT))
    await asyncio.sleep(0)
    assert not budget.try_acquire(COSMETIC)
    await waiter


async def test_a_cancelled_waiter_does_not_lose_a_slot():
    budget = RequestBudget(rate=10)
    await budget.acquire()
    doomed = asyncio.create_task(budget.acquire(EDIT))
    await asyncio.sleep(0)
    doomed.cancel()
    started = time.monotonic()
    await budget.acquire(URGENT)
    assert time.monotonic() - started < 0.2


async def test_429_pauses_the_route_or_everything():
    budget = RequestBudget(rate=100)
    budget.after_request("message.edit", "PATCH /channels/1/messages/{id}", 429, {"Retry-After": "0.3"})
    assert budget.rate_limited == 1
    started = time.monotonic()
    await budget.before_request("PATCH /channels/2/messages/{id}")     # another route: no wait
    assert time.monotonic() - started < 0.1
    await budget.before_request("PATCH /channels/1/messages/{id}")
    assert time.monotonic() - started >= 0.28
    budget.after_request("message.create", "POST /channels/3/messages", 429,
                         {"Retry-After": "0.3", "X-RateLimit-Global": "true"})
    started = time.monotonic()
    await budget.before_request("GET /channels/9/messages")
    assert time.monotonic() - started >= 0.28


async def test_an_exhausted_bucket_waits_for_its_reset():
    budget = RequestBudget(rate=100)
    budget.after_request("message.create", "POST /channels/1/messages", 200,
                         {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.25"})
    started = time.monotonic()
    await budget.before_request("POST /channels/1/messages")
    assert time.monotonic() - started >= 0.23
    assert budget.counts[("message.create", 200)] == 1


def test_edit_interval_grows_with_the_streams():
    budget = RequestBudget(rate=45)
    assert budget.edit_interval(1.0) == 1.0
    for _ in range(200):
        budget.stream_started()
    assert budget.edit_interval(1.0) == pytest.approx(200 / 22.5)
    for _ in range(200):
        budget.stream_ended()
    assert budget.edit_interval(1.0) == 1.0


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        RequestBudget(rate=0)
