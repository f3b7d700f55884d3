"""Conversations end to end: /chat threads, channel bindings, reply chains, /reset, folding, load."""
import asyncio

from bot.conversations.notices import RESET_NOTICE


async def test_chat_opens_a_thread_answered_without_mention(harness):
    h = harness
    record = await h.fake.slash(h.general, h.alice, "chat", persona="eve", topic="Goals for March")
    await asyncio.wait_for(record.done.wait(), 5)
    thread = await h.fake.wait_for(lambda: h.fake.threads(), what="a thread")
    thread_id = int(thread[0]["id"])
    assert thread[0]["name"] == "Goals for March" and thread[0]["parent_id"] == str(h.general)
    assert f"<#{thread_id}>" in record.text
    await h.fake.wait_for(lambda: h.bot.get_channel(thread_id) is not None, what="THREAD_CREATE seen by the bot")

    h.backend.enqueue(["What would make March a good month?"])
    await h.say(thread_id, h.alice, "I want to plan my month")
    h.backend.enqueue(["Start with one habit."])
    await h.fake.wait_for(lambda: len(h.fake.bot_messages(thread_id)) == 1)
    await h.settle()
    await h.say(thread_id, h.alice, "ok, where do I start?")
    texts = await h.reply_text(thread_id, count=2)
    assert texts == ["What would make March a good month?", "Start with one habit."]
    messages, _ = h.backend.calls[-1]
    assert messages[0]["content"] == h.bot.personas["eve"].system_prompt
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert h.fake.bot_messages(h.general) == [] or all(m.get("interaction_metadata") for m in h.fake.bot_messages(h.general))


async def test_channel_modes_and_threads_inherit_the_binding(harness):
    h = harness
    done = await h.fake.slash(h.other, h.admin, "persona", "set", persona="eve", mode="all")
    await asyncio.wait_for(done.done.wait(), 5)
    h.backend.default = ["answer"]
    await h.say(h.other, h.alice, "no mention needed here")
    assert await h.reply_text(h.other, count=1)
    assert h.backend.calls[-1][0][0]["content"] == h.bot.personas["eve"].system_prompt

    # mention-only mode: plain messages are ignored, mentions answered.
    done = await h.fake.slash(h.general, h.admin, "persona", "set", persona="eve", mode="mention")
    await asyncio.wait_for(done.done.wait(), 5)
    calls = len(h.backend.calls)
    await h.say(h.general, h.alice, "just chatting")
    await h.settle()
    assert len(h.backend.calls) == calls
    await h.say(h.general, h.alice, "now you", mention=True)
    await h.settle()
    assert len(h.backend.calls) == calls + 1
    assert h.backend.calls[-1][0][0]["content"] == h.bot.personas["eve"].system_prompt

    # A thread of the 'all' channel (not opened with /chat) inherits EVE and the mode.
    thread = await h.fake._create_thread(h.other, {"name": "side topic"})
    await h.fake.wait_for(lambda: h.bot.get_channel(int(thread["id"])) is not None)
    await h.say(int(thread["id"]), h.bob, "in a thread")
    await h.settle()
    assert len(h.backend.calls) == calls + 2
    assert h.backend.calls[-1][0][0]["content"] == h.bot.personas["eve"].system_prompt


async def test_reply_chain_is_the_context(harness):
    h = harness
    h.backend.enqueue(["Light, water and air."])
    first = await h.say(h.general, h.alice, "what do plants need?", mention=True)
    await h.reply_text(h.general)
    await h.say(h.general, h.bob, "unrelated chatter")
    reply_id = int(h.fake.bot_messages(h.general)[0]["id"])
    h.backend.enqueue(["Yes, sunlight."])
    await h.say(h.general, h.alice, "light as in sunlight?", reply_to=reply_id)
    await h.reply_text(h.general, count=2)
    messages, _ = h.backend.calls[-1]
    assert [m["content"] for m in messages[1:]] == ["what do plants need?", "Light, water and air.", "light as in sunlight?"]
    assert first


async def test_reset_starts_the_conversation_afresh(harness):
    h = harness
    await h.fake.slash(h.other, h.admin, "persona", "set", persona="tim", mode="all")
    await h.fake.wait_for(lambda: str(h.other) in h.bot.directory.bindings)
    h.backend.default = ["noted"]
    await h.say(h.other, h.alice, "my name is Alice")
    await h.reply_text(h.other, count=2)
    record = await h.fake.slash(h.other, h.alice, "reset")
    await asyncio.wait_for(record.done.wait(), 5)
    assert record.message["content"] == RESET_NOTICE
    await h.say(h.other, h.alice, "what is my name?")
    await h.settle()
    messages, _ = h.backend.calls[-1]
    assert [m["content"] for m in messages[1:]] == ["what is my name?"]


async def test_messages_during_a_reply_fold_into_the_next_turn(harness):
    h = harness
    await h.fake.slash(h.other, h.admin, "persona", "set", persona="tim", mode="all")
    await h.fake.wait_for(lambda: str(h.other) in h.bot.directory.bindings)
    h.backend.delay_s = 0.05
    h.backend.responder = lambda messages: ["echo: " + messages[-1]["content"].replace("\n", " | ")]
    await h.say(h.other, h.alice, "one")
    await h.fake.wait_for(lambda: h.bot.gate.running == 1)
    await h.say(h.other, h.alice, "two")
    await h.say(h.other, h.alice, "three")
    texts = await h.reply_text(h.other, count=3)
    replies = [t for t in texts if t.startswith("echo")]
    assert replies == ["echo: one", "echo: two | three"]


async def test_fifty_concurrent_conversations(harness):
    h = harness
    n = 50
    channels = [h.fake.add_channel(f"room-{i}") for i in range(n)]
    # The bot learns about channels from the gateway; send them as CHANNEL_CREATE.
    for cid in channels:
        await h.fake.dispatch("CHANNEL_CREATE", h.fake.channels[cid])
    await h.fake.wait_for(lambda: all(h.bot.get_channel(c) for c in channels))
    h.backend.delay_s = 0.005
    h.backend.responder = lambda messages: ["re: ", messages[-1]["content"].split("\n")[-1]]
    members = [h.fake.add_member(f"m{i}") for i in range(n)]

    async def converse(i: int) -> None:
        for turn in range(3):
            await h.fake.member_message(channels[i], members[i], f"c{i} t{turn}", mention_bot=True)
            await h.fake.wait_for(lambda: len(h.fake.bot_messages(channels[i])) > turn, 10, f"reply {turn} in room {i}")

    await asyncio.wait_for(asyncio.gather(*(converse(i) for i in range(n))), 60)
    await h.settle()
    for i, cid in enumerate(channels):
        texts = [m["content"] for m in h.fake.bot_messages(cid)]
        assert texts == [f"re: c{i} t{t}" for t in range(3)], f"room {i}: {texts}"
