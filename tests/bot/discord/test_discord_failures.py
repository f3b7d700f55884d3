"""Whatever Discord answers, the member gets a reply or the channel is given up on knowingly.

Through the fake Discord: history that can't be read (403, 5xx, timeout) → a real reply from the
message itself; no Send Messages → one attempt and one log line, then silence without requests;
a deleted webhook → the reply goes out as the bot account and a new webhook is made next time;
any other failure to post → a short notice.
"""
from __future__ import annotations

import logging

import pytest

from bot.conversations import channel_health
from bot.conversations.notices import REPLY_FAILED_NOTICE
from bot.discord_bot import _chat_cog


def _warnings(caplog, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and needle in r.getMessage()]


async def test_history_403_still_gets_a_real_reply_logged_once_and_listed(harness, caplog):
    h = harness
    await h.fake.deny_bot(h.general, "read_message_history")
    await h.fake.wait_for(lambda: not h.bot.get_channel(h.general).permissions_for(h.bot.get_channel(h.general).guild.me)
                          .read_message_history, what="the bot to see its permissions change")
    h.backend.enqueue(["Photosynthesis turns light into sugar."])
    await h.say(h.general, h.alice, "what is photosynthesis?", mention=True)
    assert await h.reply_text(h.general) == ["Photosynthesis turns light into sugar."]
    messages, _ = h.backend.calls[0]
    assert messages[-1] == {"role": "user", "content": "what is photosynthesis?"}   # answered from the message itself

    h.backend.enqueue(["And it needs water."])
    await h.say(h.general, h.alice, "and what else?", mention=True)
    assert (await h.reply_text(h.general, count=2))[1] == "And it needs water."
    # The second reply saw the first exchange, held from the live events.
    messages, _ = h.backend.calls[1]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert len([s for s in h.fake.sent if s.kind == "403:history"]) == 1, "an unreadable history is not asked for again"
    assert len(_warnings(caplog, "cannot read the history of channel")) == 1

    status = await h.fake.slash(h.general, h.admin, "admin", "status")
    await h.fake.wait_for(lambda: status.followups, what="/admin status")
    text = status.text
    assert f"<#{h.general}>" in text and "Read Message History" in text
    assert "**Discord requests**" in text and "rate-limited (429)" in text and "edits coalesced" in text


@pytest.mark.parametrize("fault", [dict(status=500, code=0), dict(status=404, code=10003)])
async def test_history_error_still_gets_a_reply(harness, monkeypatch, fault):
    h = harness
    # discord.py retries a 5xx with back-off for about 25 s; the history timeout cuts that short.
    h.fake.fail("history", times=None, channel_id=h.other, **fault)
    monkeypatch.setattr(_chat_cog, "HISTORY_TIMEOUT_S", 1.0)
    h.backend.enqueue(["Still answering."])
    await h.say(h.other, h.alice, "hello?", mention=True)
    assert await h.reply_text(h.other, timeout=5) == ["Still answering."]


async def test_history_timeout_still_gets_a_reply(harness, monkeypatch, caplog):
    h = harness
    monkeypatch.setattr(_chat_cog, "HISTORY_TIMEOUT_S", 0.3)
    h.fake.fail("history", hang_s=5.0, channel_id=h.other)
    h.backend.enqueue(["Here I am."])
    await h.say(h.other, h.alice, "anyone?", mention=True)
    assert await h.reply_text(h.other) == ["Here I am."]
    assert _warnings(caplog, "did not arrive within")
    assert h.bot.channel_problems.has(h.other, channel_health.UNREADABLE)


async def test_no_send_permission_one_try_one_log_line_then_quiet(harness, caplog):
    h = harness
    await h.fake.deny_bot(h.general, "send_messages")
    h.backend.default = ["You will never see this."]
    for text in ("first", "second", "third"):
        await h.say(h.general, h.alice, text, mention=True)
        await h.settle()
    attempts = [s for s in h.fake.sent if s.kind == "403:send"]
    assert len(attempts) == 1, f"a refused channel must not be retried: {len(attempts)} sends"
    assert len(_warnings(caplog, "no permission to send in channel")) == 1
    assert len(h.backend.calls) == 1, "no generation for a channel the bot cannot answer in"
    assert h.fake.bot_messages(h.general) == []
    # Other channels are unaffected.
    h.backend.enqueue(["Over here."])
    await h.say(h.other, h.bob, "hi", mention=True)
    assert await h.reply_text(h.other) == ["Over here."]


async def test_deleted_webhook_falls_back_to_the_bot_then_is_recreated(harness, caplog):
    h = harness
    await h.fake.slash(h.hooks, h.admin, "persona", "set", persona="eve")
    await h.fake.wait_for(lambda: str(h.hooks) in h.bot.directory.bindings)
    h.backend.enqueue(["First, as EVE."])
    await h.say(h.hooks, h.alice, "one", mention=True)
    await h.fake.wait_for(lambda: [m for m in h.fake.bot_messages(h.hooks) if m.get("webhook_id")])
    await h.settle()
    first_hook = h.fake.delete_webhook()

    h.backend.enqueue(["Second, as the bot."])
    await h.say(h.hooks, h.alice, "two", mention=True)
    await h.fake.wait_for(lambda: len(h.fake.bot_messages(h.hooks)) >= 2)
    await h.settle()
    second = h.fake.bot_messages(h.hooks)[-1]
    assert second["content"] == "Second, as the bot." and not second.get("webhook_id")
    assert int(second["author"]["id"]) == h.fake.app_id
    assert _warnings(caplog, "webhook of channel")

    h.backend.enqueue(["Third, as EVE again."])
    await h.say(h.hooks, h.alice, "three", mention=True)
    await h.fake.wait_for(lambda: len(h.fake.bot_messages(h.hooks)) >= 3)
    await h.settle()
    third = h.fake.bot_messages(h.hooks)[-1]
    assert third["content"] == "Third, as EVE again." and third.get("webhook_id")
    assert int(third["webhook_id"]) != first_hook and len(h.fake.webhooks) == 1


async def test_any_other_posting_failure_gets_a_short_notice(harness):
    h = harness
    h.backend.delay_s = 0.03
    h.backend.enqueue([f"w{i} " for i in range(12)])
    h.fake.fail("edit", status=400, code=50035, times=None, channel_id=h.general)
    await h.say(h.general, h.alice, "tell me", mention=True)
    await h.fake.wait_for(lambda: any(m["content"] == REPLY_FAILED_NOTICE for m in h.fake.bot_messages(h.general)),
                          what="the notice")
    await h.settle()
    notice = [m for m in h.fake.bot_messages(h.general) if m["content"] == REPLY_FAILED_NOTICE]
    assert len(notice) == 1
