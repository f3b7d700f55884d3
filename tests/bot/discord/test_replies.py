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
