"""`[gate] promote = "review"`: the scheduler never promotes by itself; it opens a review for a human."""
from bot.persona.gate import GateSpec
from bot.store import registry, reviews
from tests.trainer.schedule.conftest import FakeTrainer, Notices, approved_exchanges, stand_in_steps
from tests.trainer.schedule.test_loop import ANA, BEN
from trainer.schedule import TrainerDaemon


async def test_review_persona_waits_for_a_human(db, settings, personas):
    tim = personas["tim"]
    personas["tim"] = tim.model_copy(update={"gate": GateSpec(promote="review", review_pairs=4)})
    notices = Notices()
    switched = []

    async def on_switched(persona, version):
        switched.append(version)

    daemon = TrainerDaemon(db, settings, personas, steps=stand_in_steps(settings, FakeTrainer(settings)),
                           notifier=notices, on_switched=on_switched)
    await approved_exchanges(db, "u1", "Ana", ANA)
    await approved_exchanges(db, "u2", "Ben", BEN)
    outcome = await daemon.run_now("tim", "schedule")
    assert outcome.status == "awaiting", outcome.reason
    assert "waits for a human review" in outcome.reason and "/model review persona:tim" in outcome.reason
    # Nothing was promoted: no active version, nothing switched, the candidate still waits.
    assert await registry.active_version(db, "tim") is None and switched == []
    assert (await registry.get_version(db, "tim-v1")).status == "candidate"
    assert "promoted" not in [e["event"] for e in await registry.events(db, "tim")]
    # A review is open, with blind pairs, queued for the bot to post in the admin channel.
    review = await reviews.current_review(db, "tim")
    assert review.candidate == "tim-v1" and review.requested_by == "scheduler" and len(review.pairs) == 4
    assert review.baseline == "the base model smollm2-135m-instruct"
    assert [r.id for r in await reviews.unposted(db)] == [review.id]
    assert "waits for your review" in notices.posted[-1][1]

    # A forced second run: a newer candidate supersedes the old review, and still nothing is promoted.
    await approved_exchanges(db, "u3", "Cy", [("What is 2+2?", "Four! Want to try 3+3?")])
    outcome = await daemon.run_now("tim", "force")
    assert outcome.status == "awaiting" and await registry.active_version(db, "tim") is None
    newer = await reviews.current_review(db, "tim")
    assert newer.candidate == "tim-v2" and (await reviews.get_review(db, review.id)).status == "superseded"
