"""Replies end to end: mention → streamed edits; long replies split; failures; 429s; deletion."""
import asyncio

from bot.backends.base import BackendError


async def test_mention_streams_by_edits_and_final_text_matches(harness):
    h = harness
    chunks = ["Photosynthesis ", "is how ", "plants ", "turn ", "light ", "into ", "food, ", "using ", "water ", "and air."]
    h.backend.delay_s = 0.03
    h.backend.enqueue(chunks)
    asked = await h.say(h.general, h.alice, "what is photosynthesis?", mention=True)

    texts = await h.reply_text(h.general)
    assert texts == ["".join(chunks)]
    reply = h.fake.bot_messages(h.general)[0]
    assert reply["message_reference"]["message_id"] == str(asked)       # a reply to the member
    edits = h.fake.edits_of(int(reply["id"]))
    assert len(edits) >= 2, "the reply should stream through several edits"
    assert edits[-1].content == "".join(chunks)
    gaps = [b.at - a.at for a, b in zip(edits, edits[1:])]
    assert all(g >= 0.04 for g in gaps), f"edits closer than the interval: {gaps}"
    # The model saw the member's words without the bot's mention.
    messages, _ = h.backend.calls[0]
    assert messages[-1] == {"role": "user", "content": "what is photosynthesis?"}


def _fences_balanced(text: str) -> bool:
    return sum(1 for line in text.split("\n") if line.strip().startswith("```")) % 2 == 0


async def test_long_reply_is_split_without_breaking_code_or_words(harness):
    h = harness
    code = "\n".join(f"    total_{i} = compute(step={i}, rate=0.{i % 10})  # accumulate" for i in range(70))
    prose = " ".join(["Photosynthesis converts light energy into chemical energy."] * 40)
    text = f"{prose}\n\n```python\ndef run():\n{code}\n    return total_69\n```\n\n{prose}"
    assert len(text) > 4000
    # Streamed in pieces, so the split also happens while the reply grows.
    h.backend.enqueue([text[i:i + 700] for i in range(0, len(text), 700)])
    await h.say(h.general, h.alice, "show me", mention=True)
    parts = await h.reply_text(h.general, count=3)
    assert len(parts) >= 3
    assert all(len(p) <= 2000 for p in parts)
    assert all(_fences_balanced(p) for p in parts), "every message must open and close its own code fences"
    assert any(p.startswith("```python\n") for p in parts[1:]), "a split code block reopens with its language"
    # Nothing lost: the words and code lines all arrive, in order, none cut in half.
    words = " ".join(parts).replace("```python", " ").replace("```", " ").split()
    assert words == text.replace("```python", " ").replace("```", " ").split()


async def test_backend_failure_apologises_and_keeps_serving(harness, caplog):
    h = harness
    tim = h.bot.personas["tim"]
    h.backend.enqueue(BackendError("connection refused"))
    await h.say(h.general, h.alice, "first question", mention=True)
    assert await h.reply_text(h.general) == [tim.error_reply]
    h.backend.enqueue(["All good again."])
    await h.say(h.general, h.alice, "second question", mention=True)
    assert (await h.reply_text(h.general, count=2))[1] == "All good again."
    assert "first question" not in caplog.text


async def test_rate_limited_edit_is_retried_and_the_reply_completes(harness):
    h = harness
    h.backend.delay_s = 0.02
    chunks = [f"part{i} " for i in range(15)]
    h.backend.enqueue(chunks)
    h.fake.rate_limit_next_patch(0.3)
    await h.say(h.general, h.alice, "go", mention=True)
    assert await h.reply_text(h.general) == ["".join(chunks).strip()]
    limited = [s for s in h.fake.sent if s.kind == "429"]
    assert len(limited) == 1
    later = [s for s in h.fake.sent if s.kind == "edit" and s.at > limited[0].at]
    assert later and later[0].at - limited[0].at >= 0.29, "the edit is retried only after retry_after"
    # No storm: edits of the message stay one per interval, even around the 429.
    edits = h.fake.edits_of(limited[0].message_id)
    assert all(b.at - a.at >= 0.04 for a, b in zip(edits, edits[1:]))


async def test_reply_deleted_mid_stream_is_abandoned_quietly(harness):
    h = harness
    await h.opt_in(h.alice)
    h.backend.delay_s = 0.03
    h.backend.enqueue([f"w{i} " for i in range(30)])
    await h.say(h.general, h.alice, "tell me a long story", mention=True)
    first = await h.fake.wait_for(lambda: h.fake.bot_messages(h.general), what="the first part")
    mid = int(first[0]["id"])
    h.fake.delete_message(h.general, mid)
    await h.settle()
    assert h.fake.bot_messages(h.general) == []
    async with h.db.execute("SELECT COUNT(*) FROM messages") as cur:
        assert (await cur.fetchone())[0] == 0, "an abandoned reply is not logged"
    edits_after = h.fake.edits_of(mid)
    assert len(edits_after) == 0
    # And the bot still answers.
    h.backend.enqueue(["Still here."])
    h.backend.delay_s = 0
    await h.say(h.general, h.alice, "hello?", mention=True)
    assert await h.reply_text(h.general) == ["Still here."]


async def test_typing_indicator_while_waiting_for_the_first_token(harness):
    h = harness
    h.backend.delay_s = 0.4
    h.backend.enqueue(["Hmm, ", "let me think."])
    await h.say(h.general, h.alice, "hard question", mention=True)
    await h.reply_text(h.general)
    typing = h.fake.typing_in(h.general)
    first_send = next(s for s in h.fake.sent if s.kind == "create" and s.channel_id == h.general)
    assert typing and typing[0].at < first_send.at


async def test_silent_persona_sends_nothing(harness):
    h = harness
    await h.fake.slash(h.other, h.admin, "persona", "set", persona="twin", mode="all")
    await h.fake.wait_for(lambda: "twin" in {b.persona for b in h.bot.directory.bindings.values()})
    h.backend.enqueue([""])
    await h.say(h.other, h.alice, "ok")
    await h.settle()
    assert h.fake.bot_messages(h.other) == [] or all(
        m.get("interaction_metadata") for m in h.fake.bot_messages(h.other))
    assert len(h.backend.calls) == 1


async def test_never_answers_bots(harness):
    h = harness
    robot = h.fake.add_member("robot", bot=True)
    await h.say(h.general, robot, "hello bot", mention=True)
    await h.settle()
    await asyncio.sleep(0.05)
    assert h.fake.bot_messages(h.general) == [] and h.backend.calls == []


async def test_webhook_posts_as_the_persona_and_replies_route_to_it(harness):
    h = harness
    h.backend.delay_s = 0.02
    h.backend.enqueue(["I am ", "EVE, ", "your coach."])
    await h.fake.slash(h.hooks, h.admin, "persona", "set", persona="eve")
    await h.fake.wait_for(lambda: h.hooks and str(h.hooks) in h.bot.directory.bindings)
    await h.say(h.hooks, h.alice, "who are you?", mention=True)
    posts = await h.fake.wait_for(lambda: [m for m in h.fake.bot_messages(h.hooks) if m.get("webhook_id")])
    await h.settle()
    post = h.fake.messages[h.hooks][int(posts[0]["id"])]
    assert post["author"]["username"] == "EVE" and post["content"] == "I am EVE, your coach."
    assert len(h.fake.webhooks) == 1
    # A reply to EVE's post goes to EVE (with TIM as the default persona), through the same webhook.
    h.backend.enqueue(["Glad you asked."])
    await h.say(h.hooks, h.alice, "and what do you do?", reply_to=int(post["id"]))
    await h.fake.wait_for(lambda: len([m for m in h.fake.bot_messages(h.hooks) if m.get("webhook_id")]) == 2)
    await h.settle()
    messages, _ = h.backend.calls[-1]
    assert messages[0]["content"] == h.bot.personas["eve"].system_prompt
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]   # the reply chain
    assert len(h.fake.webhooks) == 1


async def test_direct_messages_are_answered_by_the_default_persona(harness):
    h = harness
    dm = h.fake.add_dm(h.bob)
    h.backend.enqueue(["Hi Bob!"])
    await h.say(dm, h.bob, "hi")
    assert await h.reply_text(dm) == ["Hi Bob!"]
    assert h.backend.calls[0][0][0]["content"] == h.bot.personas["tim"].system_prompt


async def test_full_queue_answers_busy(harness):
    from bot.conversations.notices import BUSY_NOTICE
    from bot.conversations.scheduling import GenerationGate

    h = harness
    h.bot.gate = GenerationGate(max_concurrent=1, max_queue=0)
    h.backend.delay_s = 0.2
    h.backend.default = ["slow answer"]
    await h.say(h.general, h.alice, "one", mention=True)
    await h.fake.wait_for(lambda: h.bot.gate.running == 1, what="a generation in progress")
    await h.say(h.other, h.bob, "two", mention=True)
    assert await h.reply_text(h.other) == [BUSY_NOTICE]
    assert await h.reply_text(h.general) == ["slow answer"]
