"""/model review through the fake Discord and the real discord.py: the gate's numbers, a thread of blind
pairs, votes, Promote only after K/2 votes, only admins, buttons that survive a restart, and the reviews
the scheduler queues."""
import re

from bot.discord_bot._review_cog import REFUSAL
from bot.store import registry, reviews
from tests.bot.discord.test_curation import Restarted, done
from tests.bot.serving.fakes import make_adapter
from tests.support.fake_discord import InteractionRecord

SAMPLES = [{"context": f"val-{i}", "messages": [{"role": "user", "content": f"question number {i}"}],
            "candidate": f"NEW reply {i}", "baseline": f"OLD reply {i}"} for i in range(8)]


async def gated(h):
    v = await registry.create_version(h.db, persona="tim", backend="local", base_model="smollm2-135m-instruct",
                                      dataset_version="d1")
    adapter = make_adapter(h.settings.core.data_dir / "adapters" / "tim" / v.name)
    metrics = {"eval": {"passed": True, "samples": SAMPLES, "baseline": "tim-v1", "probes": [{}], "probes_passed": 1,
                        "losses": {"candidate": 1.2, "active": 1.3},
                        "judge": {"judge": "local", "win_rate": 0.75, "pairs": 8, "wins": 4, "losses": 0, "ties": 4,
                                  "unparsed": 0, "examples": {"wins": [], "losses": []}}}}
    await registry.update_version(h.db, v.name, status="candidate", adapter_path=str(adapter), metrics=metrics)
    return v.name


def buttons(msg) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in msg.get("components") or [] for c in row["components"]}


async def click(h, channel: int, msg: dict, user: int, label: str) -> InteractionRecord:
    record = InteractionRecord(0, "posted", channel, user, message=msg)
    return await done(await h.fake.click(record, user, buttons(msg)[label]))


def private(record) -> str:
    first = record.responses[0]
    assert first["type"] == 4 and first["data"]["flags"] & 64, first
    return first["data"]["content"]


async def open_thread(h) -> tuple[int, list[dict]]:
    await h.fake.wait_for(lambda: h.fake.threads(), 5, "the review thread")
    thread = int(h.fake.threads()[-1]["id"])
    await h.fake.wait_for(lambda: len(h.fake.bot_messages(thread)) >= 8, 5, "the pairs")
    return thread, h.fake.bot_messages(thread)


async def test_blind_pairs_votes_and_promote_across_a_restart(harness):
    h = harness
    old = await gated(h)
    await registry.set_active(h.db, old)
    new = await gated(h)

    refused = await done(await h.fake.slash(h.general, h.bob, "model", "review", persona="tim"))
    assert refused.text == REFUSAL and not h.fake.threads()

    asked = await done(await h.fake.slash(h.general, h.admin, "model", "review", persona="tim"))
    thread, messages = await open_thread(h)
    await h.fake.wait_for(lambda: "Posted the review" in asked.text, 5, "the answer")
    assert f"<#{thread}>" in asked.text
    header = h.fake.bot_messages(h.general)[-1]["content"]
    assert "a new version waits for review" in header and "judge local: win rate 0.75" in header
    review = await reviews.current_review(h.db, "tim")
    assert review.candidate == new and review.channel_id == str(h.general) and review.thread_id == str(thread)

    pairs, end = messages[1:-1], messages[-1]
    assert len(pairs) == 6 and list(buttons(end)) == ["Promote", "Keep current"]
    for i, msg in enumerate(pairs):
        assert list(buttons(msg)) == ["1 is better", "2 is better", "Same"]
        one, two = review.pairs[i].shown()
        text = msg["content"]
        # Blind: the replies in the stored random order, and nothing that names the versions.
        assert re.search(rf"\*\*Reply 1\*\*\n> {one}\n\n\*\*Reply 2\*\*\n> {two}$", text), text
        assert new not in text and old not in text and "NEW" in text and "OLD" in text

    # Promote is refused before K/2 = 3 pairs carry a vote; plain members may not vote or promote.
    assert "Vote on at least 3 of the 6 pairs" in private(await click(h, thread, end, h.admin, "Promote"))
    assert private(await click(h, thread, pairs[0], h.bob, "1 is better")) == REFUSAL
    assert private(await click(h, thread, end, h.bob, "Promote")) == REFUSAL
    assert (await reviews.tally(h.db, review.id)).votes == 0

    answer = private(await click(h, thread, pairs[0], h.admin, "1 is better"))
    assert answer.startswith("Your vote on pair 1: Reply 1 is better. 1 pair(s) voted; 2 more")
    await click(h, thread, pairs[1], h.admin, "2 is better")
    await click(h, thread, pairs[2], h.admin, "Same")
    async with h.db.execute("SELECT pair, voter, choice, via, voted_at FROM review_votes ORDER BY pair") as cur:
        votes = [dict(r) for r in await cur.fetchall()]
    assert [v["choice"] for v in votes] == [review.pairs[0].first, "baseline" if review.pairs[1].first == "candidate"
                                            else "candidate", "same"]
    assert {v["voter"] for v in votes} == {str(h.admin)} and all(v["voted_at"] and v["via"] == "discord" for v in votes)

    async with Restarted(h):
        # The buttons posted before the restart still work.
        bob_tries = await click(h, thread, end, h.bob, "Promote")
        assert private(bob_tries) == REFUSAL
        promoted = await click(h, thread, end, h.admin, "Promote")
        await h.fake.wait_for(lambda: promoted.followups, 5, "the promotion")
        assert f"promoted to {new} (was {old})" in promoted.text and "human win rate" in promoted.text
        assert (await registry.active_version(h.db, "tim")).name == new
        assert (await registry.promoted_by(h.db, "tim"))[new] == str(h.admin)
        assert (await reviews.get_review(h.db, review.id)).status == "promoted"
        await h.fake.wait_for(lambda: not h.fake.messages[thread][int(end["id"])].get("components"), 5, "buttons removed")
        late = await click(h, thread, pairs[3], h.admin, "Same")
        assert "not counted" in private(late) and "closed" in private(late)


async def test_keep_current_and_reviews_queued_by_the_scheduler(harness):
    h = harness
    from trainer.review import start_review

    tim = h.bot.personas["tim"]
    h.bot.personas["tim"] = tim.model_copy(update={"schedule": tim.schedule.model_copy(update={"admin_channel_id": h.other})})
    new = await gated(h)
    review = await start_review(h.db, h.bot.personas["tim"], requested_by="scheduler")
    cog = h.bot.get_cog("ReviewCog")
    assert await cog.post_queued() == 1 and await cog.post_queued() == 0     # posted once
    thread, messages = await open_thread(h)
    assert int(h.fake.threads()[-1]["parent_id"]) == h.other
    assert "waits for review" in h.fake.bot_messages(h.other)[-1]["content"]
    kept = await click(h, thread, messages[-1], h.admin, "Keep current")
    await h.fake.wait_for(lambda: kept.followups, 5, "the decision")
    assert "Kept the current version" in kept.text
    assert (await reviews.get_review(h.db, review.id)).status == "kept"
    assert await registry.active_version(h.db, "tim") is None and (await registry.get_version(h.db, new)).status == "candidate"
    # The candidate still passed the gate: an admin may ask for a fresh review of it.
    again = await done(await h.fake.slash(h.general, h.admin, "model", "review", persona="tim"))
    await h.fake.wait_for(lambda: len(h.fake.threads()) == 2 and "Posted the review" in again.text, 5, "a second review")
    assert (await reviews.current_review(h.db, "tim")).id != review.id


async def test_nothing_to_review_is_said_privately(harness):
    h = harness
    record = await done(await h.fake.slash(h.general, h.admin, "model", "review", persona="tim"))
    await h.fake.wait_for(lambda: record.followups, 5, "the answer")
    assert "Nothing to review: tim has no candidate that passed the gate" in record.text
    assert record.followups[0].get("flags", 0) & 64 and not h.fake.threads()
    unknown = await done(await h.fake.slash(h.general, h.admin, "model", "review", persona="nobody"))
    assert unknown.text == "There is no persona by that name."


async def test_a_review_that_quoted_a_forgotten_member_is_withdrawn_from_discord(harness):
    from bot.discord_bot._review_cog import WITHDRAWN

    h = harness
    old = await gated(h)
    await registry.set_active(h.db, old)
    new = await gated(h)
    await done(await h.fake.slash(h.general, h.admin, "model", "review", persona="tim"))
    thread, messages = await open_thread(h)
    assert any("question number 0" in m["content"] for m in messages)

    assert await reviews.forget_pairs(h.db, [new]) == 1     # the trainer's forget hook, for a member in d1
    cog = h.bot.get_cog("ReviewCog")
    assert await cog.withdraw_forgotten() == 1
    left = h.fake.bot_messages(thread)
    assert [m["content"] for m in left] == [WITHDRAWN]
    everything = [m.get("content") or "" for channel in h.fake.messages.values() for m in channel.values()]
    assert not any("question number" in text or "NEW reply" in text or "OLD reply" in text for text in everything)
    assert await cog.withdraw_forgotten() == 0              # once
    assert [m["content"] for m in h.fake.bot_messages(thread)] == [WITHDRAWN]


async def test_asked_inside_a_thread_the_review_opens_a_thread_of_the_parent_channel(harness):
    h = harness
    old = await gated(h)
    await registry.set_active(h.db, old)
    await gated(h)
    await done(await h.fake.slash(h.general, h.alice, "chat", persona="tim"))
    chat_thread = int(h.fake.threads()[-1]["id"])
    asked = await done(await h.fake.slash(chat_thread, h.admin, "model", "review", persona="tim"))
    await h.fake.wait_for(lambda: "Posted the review" in asked.text, 5, "the answer")
    review_thread = h.fake.threads()[-1]
    assert int(review_thread["id"]) != chat_thread and review_thread["parent_id"] == str(h.general)
