"""Human promotion reviews in the store: blind order, votes with voter and time, tallies, export and delete."""
import random

import pytest

from bot.store import reviews
from bot.store.privacy import export_user, forget_user

PAIRS = [{"context": f"val-{i}", "messages": [{"role": "user", "content": f"q{i}"}],
          "candidate": f"new {i}", "baseline": f"old {i}"} for i in range(4)]


async def test_blind_order_votes_and_tally(db):
    review = await reviews.open_review(db, persona="tim", candidate="tim-v2", baseline="tim-v1", pairs=PAIRS,
                                       requested_by="scheduler", rng=random.Random(3))
    firsts = [p.first for p in review.pairs]
    assert set(firsts) == {"candidate", "baseline"}     # the new reply is not always "Reply 1"
    for p in review.pairs:
        one, two = p.shown()
        assert (one, two) == ((p.candidate, p.baseline) if p.first == "candidate" else (p.baseline, p.candidate))
    assert review.needed_votes == 2

    # "1" means whichever reply was shown first: the vote is stored as candidate / baseline.
    new_first = firsts.index("candidate")
    old_first = firsts.index("baseline")
    assert await reviews.vote(db, review.id, new_first, "111", "1") == "candidate"
    assert await reviews.vote(db, review.id, old_first, "111", "1") == "baseline"
    assert await reviews.vote(db, review.id, old_first, "111", "2") == "candidate"   # changed their mind: one vote
    assert await reviews.vote(db, review.id, new_first, "222", "same") == "same"
    tally = await reviews.tally(db, review.id)
    assert (tally.votes, tally.pairs_voted, tally.candidate, tally.same) == (3, 2, 2, 1)
    assert tally.human_win_rate == pytest.approx(2.5 / 3) and tally.can_decide
    async with db.execute("SELECT voter, voted_at FROM review_votes ORDER BY voter") as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    assert [r[0] for r in rows] == ["111", "111", "222"] and all(r[1] for r in rows)
    assert (await reviews.human_win_rates(db, "tim")) == {"tim-v2": pytest.approx(2.5 / 3)}

    with pytest.raises(ValueError):
        await reviews.vote(db, review.id, 0, "111", "3")
    with pytest.raises(LookupError):
        await reviews.vote(db, review.id, 9, "111", "1")
    assert await reviews.decide(db, review.id, "kept", "111")
    assert not await reviews.decide(db, review.id, "promoted", "222")     # decided once
    with pytest.raises(LookupError):
        await reviews.vote(db, review.id, 0, "111", "1")                   # closed


async def test_newer_review_supersedes_and_queue(db):
    first = await reviews.open_review(db, persona="tim", candidate="tim-v2", baseline="tim-v1", pairs=PAIRS)
    second = await reviews.open_review(db, persona="tim", candidate="tim-v3", baseline="tim-v1", pairs=PAIRS[:1])
    assert (await reviews.get_review(db, first.id)).status == "superseded"
    assert (await reviews.current_review(db, "tim")).id == second.id
    assert [r.id for r in await reviews.unposted(db)] == [second.id]
    await reviews.mark_posted(db, second.id, channel_id="5", message_id="6", thread_id="7")
    assert await reviews.unposted(db) == []
    with pytest.raises(ValueError):
        await reviews.open_review(db, persona="tim", candidate="tim-v4", baseline="tim-v1", pairs=[])


async def test_reviewer_data_is_exported_and_unnamed_on_forget(db):
    from bot.store import registry

    review = await reviews.open_review(db, persona="tim", candidate="tim-v2", baseline="tim-v1", pairs=PAIRS)
    await reviews.vote(db, review.id, 0, "42", "1")
    await reviews.vote(db, review.id, 1, "43", "2")
    await reviews.decide(db, review.id, "promoted", "42")
    await registry.record_event(db, "tim", "tim-v2", "promoted", "by 42")
    exported = (await export_user(db, "42"))["reviews"]
    assert len(exported["votes"]) == 1 and exported["votes"][0]["candidate"] == "tim-v2"
    assert exported["reviews_requested_or_decided"][0]["status"] == "promoted"
    assert exported["promotions"][0]["version"] == "tim-v2"

    await forget_user(db, "42", hooks=())
    async with db.execute("SELECT voter FROM review_votes ORDER BY pair") as cur:
        assert [r[0] for r in await cur.fetchall()] == [None, "43"]       # the vote stays, un-named
    assert (await reviews.get_review(db, review.id)).decided_by is None
    assert (await registry.promoted_by(db, "tim")) == {"tim-v2": "(forgotten)"}
    assert (await export_user(db, "42"))["reviews"] == {"votes": [], "reviews_requested_or_decided": [], "promotions": []}
    assert (await reviews.tally(db, review.id)).votes == 2
