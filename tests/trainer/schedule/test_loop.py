"""The scheduled loop end to end: approved logs → scheduled run → promoted → next reply from the
new version; then a member is forgotten → taint → retrain without their examples."""
import asyncio
from datetime import datetime, timedelta, timezone

from bot.store import registry
from bot.store.privacy import forget_user
from tests.trainer.schedule.conftest import FakeTrainer, Notices, Serving, approved_exchanges, stand_in_steps
from trainer.dataset.versions import list_versions
from trainer.forget import audit_user, on_forget
from trainer.schedule import TrainerDaemon
from trainer.schedule.runs import list_runs

ANA = [("What is a fraction?", "A fraction is a part of a whole, like one slice of a pizza."),
       ("How do I add 1/2 and 1/4?", "First make the bottoms match: 1/2 is 2/4, so 2/4 plus 1/4 is 3/4."),
       ("Why is the sky blue?", "Sunlight scatters in the air, and blue light scatters the most."),
       ("What is a verb?", "A verb is a doing word, like run, think or eat.")]
BEN = [("Can you explain gravity?", "Gravity pulls things with mass toward each other."),
       ("What do plants eat?", "Plants make their own food from sunlight, water and air."),
       ("Is zero even?", "Yes, zero is even, because it splits into two equal groups.")]


async def wait_for(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_scheduled_loop_then_forget_and_retrain(db, settings, personas):
    serving = Serving(db, settings, personas)
    await serving.sync.start()
    assert await serving.reply() == ("Reply from base. Anything else?", "base")   # no fine-tune yet

    trainer = FakeTrainer(settings)
    notices = Notices()
    daemon = TrainerDaemon(db, settings, personas, steps=stand_in_steps(settings, trainer), notifier=notices,
                           on_switched=serving.on_switched)
    await approved_exchanges(db, "u1", "Ana", ANA[:2])
    await daemon.start()
    try:
        assert set(daemon.next_runs()) == {"tim"}                  # only tim has [schedule] enabled
        # Too few new approved examples: the scheduled run is skipped (and recorded).
        assert (await daemon.run_now("tim", "schedule")).status == "skipped"

        await approved_exchanges(db, "u1", "Ana", ANA[2:])
        await approved_exchanges(db, "u2", "Ben", BEN)
        # The cron fires (brought forward to now) and the scheduler runs the pipeline itself.
        daemon._scheduler.modify_job("retrain:tim", next_run_time=datetime.now(timezone.utc))
        await wait_for(lambda: daemon.outcomes and daemon.outcomes[-1].status != "skipped")
        outcome = daemon.outcomes[-1]
        assert outcome.status == "promoted", outcome.reason
        assert (outcome.new_examples, outcome.dataset_version, outcome.model_version) == (7, "v1", "tim-v1")
        assert "Gravity" in trainer.trained_on["tim-v1"]
        # The next reply comes from the new version, and the admin channel heard about it.
        assert await serving.reply() == ("Reply from tim-v1. Anything else?", "base+tim-v1")
        assert notices.posted[-1][0] == "tim" and "promoted to tim-v1" in notices.posted[-1][1]
        assert "gate PASSED" in notices.posted[-1][1]
        next_run = datetime.fromisoformat(daemon.next_runs()["tim"])
        assert next_run > datetime.now(timezone.utc) and next_run.weekday() == 0 and next_run.hour == 4

        # Nothing new since: the next scheduled run is skipped.
        assert (await daemon.run_now("tim", "schedule")).status == "skipped"

        # Ben asks to be forgotten: the dataset that held his data is stale, tim-v1 tainted.
        audit = await audit_user(db, "u2")
        assert [d.version for d in audit.datasets] == ["v1"] and audit.active_models == ["tim-v1"]
        await forget_user(db, "u2", hooks=[on_forget])
        assert [(d["version"], d["status"]) for d in await list_versions(db, "tim")] == [(1, "stale")]
        v1 = await registry.get_version(db, "tim-v1")
        assert v1.tainted and "u2" not in v1.tainted_reason and "asked to be forgotten" in v1.tainted_reason

        # The next scheduled run retrains although there are no new examples, without Ben's data.
        outcome = await daemon.run_now("tim", "schedule")
        assert outcome.status == "promoted", outcome.reason
        assert (outcome.dataset_version, outcome.model_version) == ("v2", "tim-v2")
        assert "Gravity" not in trainer.trained_on["tim-v2"] and "zero" not in trainer.trained_on["tim-v2"]
        assert "pizza" in trainer.trained_on["tim-v2"]
        assert await serving.reply() == ("Reply from tim-v2. Anything else?", "base+tim-v2")
        assert "is tainted" in notices.posted[-1][1]
        runs = await list_runs(db, "tim")
        assert [(r.trigger, r.status) for r in reversed(runs)] == [
            ("schedule", "skipped"), ("schedule", "promoted"), ("schedule", "skipped"), ("taint", "promoted")]
        assert all(r.notified_at for r in runs if r.notice)

        # The audit still shows where Ben's data was, though it is gone from the store.
        audit = await audit_user(db, "u2")
        assert audit.stored_messages == 0 and audit.active_models == []
        assert [(m["name"], m["status"], m["tainted"]) for m in audit.models] == [("tim-v1", "retired", True)]
    finally:
        await daemon.stop()
        await serving.pool.aclose()


async def test_forced_retrain_runs_without_new_examples(db, settings, personas):
    trainer = FakeTrainer(settings)
    daemon = TrainerDaemon(db, settings, personas, steps=stand_in_steps(settings, trainer), notifier=Notices())
    await approved_exchanges(db, "u1", "Ana", ANA[:1])
    outcome = await daemon.run_now("tim", "force")       # no scheduler needed for --force
    assert outcome.status == "promoted" and outcome.new_examples == 1


async def test_failing_step_fails_the_run_and_promotes_nothing(db, settings, personas):
    trainer = FakeTrainer(settings)
    steps = stand_in_steps(settings, trainer)

    async def broken(ctx, persona, dataset):
        raise RuntimeError("CUDA out of memory")

    steps.train = broken
    notices = Notices()
    daemon = TrainerDaemon(db, settings, personas, steps=steps, notifier=notices)
    await approved_exchanges(db, "u1", "Ana", ANA)
    outcome = await daemon.run_now("tim", "schedule")
    assert outcome.status == "failed" and outcome.reason == "training failed: RuntimeError: CUDA out of memory"
    assert "failed during training" in notices.posted[-1][1]
    assert await registry.active_version(db, "tim") is None
    # The examples are still new for the next run: a failed run does not move the cut-off.
    steps.train = trainer
    assert (await daemon.run_now("tim", "schedule")).status == "promoted"


async def test_gate_rejection_is_reported_and_nothing_promoted(db, settings, personas):
    trainer = FakeTrainer(settings)
    steps = stand_in_steps(settings, trainer)
    from tests.trainer.evaluate.stand_ins import leaky_tim

    inner = steps.evaluate

    async def leaky(ctx, persona, version):
        from tests.trainer.evaluate.stand_ins import Backends
        from trainer.evaluate.gate import evaluate_version

        async def loss(p, v, val):
            return 3.0 if v is None else 1.0
        return await evaluate_version(ctx.db, persona, version, data_dir=settings.core.data_dir, loss_fn=loss,
                                      backend_factory=Backends({version.name: leaky_tim}))

    steps.evaluate = leaky
    notices = Notices()
    daemon = TrainerDaemon(db, settings, personas, steps=steps, notifier=notices)
    await approved_exchanges(db, "u1", "Ana", ANA)
    outcome = await daemon.run_now("tim", "schedule")
    assert outcome.status == "rejected" and "no_label_leakage" in outcome.reason
    assert "did not pass the gate" in notices.posted[-1][1]
    assert await registry.active_version(db, "tim") is None
    assert (await registry.get_version(db, "tim-v1")).status == "failed"
    steps.evaluate = inner
    # A rejected run did train: its examples are no longer new.
    assert (await daemon.run_now("tim", "schedule")).status == "skipped"
