"""Graceful shutdown in process (`bot.cli.run.graceful_shutdown`), through the fake Discord.

The SIGTERM path of the real process, with the notice, is in tests/bot/cli/test_run_ops.py; here a
reply that fits in the grace period completes in full and is stored, and nothing new is taken.
"""
import asyncio
import time

from bot.cli.run import graceful_shutdown
from bot.conversations.notices import SHUTDOWN_NOTICE


async def test_a_reply_that_fits_in_the_grace_period_completes_and_is_stored(harness):
    h = harness
    await h.opt_in(h.alice)
    chunks = [f"part{i} " for i in range(10)]
    h.backend.delay_s = 0.05
    h.backend.enqueue(chunks)
    await h.say(h.general, h.alice, "explain slowly", mention=True)
    await h.fake.wait_for(lambda: h.fake.bot_messages(h.general), 5, "the reply to start")

    started = time.monotonic()
    shutdown = asyncio.create_task(graceful_shutdown(h.bot, h.bot.engine, grace_s=5))
    await asyncio.sleep(0.05)
    assert not h.bot.taking_messages
    # Bob writes after shutdown began: not taken.
    await h.fake.member_message(h.general, h.bob, "anyone?", mention_bot=True)
    await asyncio.wait_for(shutdown, 8)
    assert time.monotonic() - started < 3, "it closes as soon as the replies are done"
    assert h.bot.is_closed()

    texts = [m["content"] for m in h.fake.bot_messages(h.general)]
    assert texts == ["".join(chunks).strip()]
    assert SHUTDOWN_NOTICE not in texts[0]
    async with h.db.execute("SELECT role, content FROM messages ORDER BY id") as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    assert rows == [("user", "explain slowly"), ("assistant", "".join(chunks).strip())]


async def test_after_the_grace_period_replies_end_with_the_notice_and_are_not_stored(harness):
    h = harness
    await h.opt_in(h.alice)
    h.backend.delay_s = 0.1
    h.backend.enqueue([f"bit{i} " for i in range(200)])
    await h.say(h.general, h.alice, "talk forever", mention=True)
    await h.fake.wait_for(lambda: h.fake.bot_messages(h.general), 5, "the reply to start")
    await asyncio.wait_for(graceful_shutdown(h.bot, h.bot.engine, grace_s=0.5), 6)
    final = h.fake.bot_messages(h.general)[0]["content"]
    assert final.startswith("bit0") and final.endswith(SHUTDOWN_NOTICE)
    async with h.db.execute("SELECT count(*) FROM messages") as cur:
        assert (await cur.fetchone())[0] == 0, "an interrupted reply is not an exchange"
