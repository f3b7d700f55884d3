"""One request budget under Discord's limits: 200 replies streaming at once, no 429, all complete.

The fake Discord enforces 50 requests/s globally and 5 messages (and 5 edits) per 5 s per channel,
answering 429 beyond them as Discord does. The model streams each reply for about 2 s. The bot
must stay under the limits by itself (DISCORD_REQUESTS_PER_SECOND, default 45), give every
reply its complete text, and coalesce intermediate edits instead of queueing them all.
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

from bot.backends.base import Backend, GenerationParams
from bot.conversations.scheduling import GenerationGate

CONVERSATIONS = 200


class TwoSecondEcho(Backend):
    """Streams "Answer to <the member's words>: ..." in 20 pieces over about 2 s."""

    kind = "echo"

    @property
    def model_name(self) -> str:
        return "echo"

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        yield f"Answer to {messages[-1]['content']}:"
        for i in range(19):
            await asyncio.sleep(0.1)
            yield f" part{i}"


def expected(words: str) -> str:
    return f"Answer to {words}:" + "".join(f" part{i}" for i in range(19))


async def test_200_streams_under_a_50_per_second_limit_no_429_all_complete(harness):
    h = harness
    h.fake.enforce_limits(global_per_s=50, channel_messages=(5, 5.0))
    h.bot.settings.discord.edit_interval_s = 1.0
    h.bot.gate = GenerationGate(CONVERSATIONS, 1000)
    backend = TwoSecondEcho()
    for name in h.bot.personas:
        h.bot.pool.pin(name, backend)
    dms = []
    for i in range(CONVERSATIONS):
        member = h.fake.add_member(f"member{i}")
        dms.append((h.fake.add_dm(member), member, f"question {i}"))

    started = time.monotonic()
    await asyncio.gather(*(h.fake.member_message(dm, member, words) for dm, member, words in dms))

    def complete() -> bool:
        return all([m["content"] for m in h.fake.bot_messages(dm)] == [expected(words)] for dm, _, words in dms)

    await h.fake.wait_for(complete, timeout=120, what="every reply complete")
    await h.settle()
    elapsed = time.monotonic() - started

    assert h.fake.rate_limited == [], f"{len(h.fake.rate_limited)} requests got a 429"
    assert h.fake.peak_per_second() <= 50
    budget = h.bot.requests
    assert budget.rate_limited == 0 and budget.peak_rate <= 45
    # Adaptive pacing: with 200 streams, intermediate edits are folded together.
    assert budget.coalesced_edits > 0
    edits = sum(1 for s in h.fake.sent if s.kind == "edit")
    assert edits < CONVERSATIONS * 3, f"{edits} edits: intermediate edits were not coalesced"
    # Each reply's last edit is its full text (checked by `complete`), and nothing took forever:
    # about (200 history reads + 200 posts + 200 final edits) / 45 per second.
    assert elapsed < 60, f"took {elapsed:.1f} s"


def test_route_classes_and_keys_keep_the_major_id_only():
    from bot.discord_bot._requests import route_of

    assert route_of("POST", "/api/v10/channels/123456789/messages") == ("message.create", "POST /channels/123456789/messages")
    assert route_of("PATCH", "/api/v10/channels/123456789/messages/987654321") == \
        ("message.edit", "PATCH /channels/123456789/messages/{id}")
    assert route_of("GET", "/api/v10/channels/123456789/messages")[0] == "history"
    assert route_of("POST", "/api/v10/webhooks/123456789/tok-en")[0] == "webhook.execute"
    assert route_of("PATCH", "/api/v10/webhooks/123456789/tok/messages/987654321")[0] == "webhook.edit"
    assert route_of("POST", "/api/v10/interactions/123456789/tok/callback")[0] == "interaction"
    assert route_of("GET", "/api/v10/users/@me")[0] == "other"
