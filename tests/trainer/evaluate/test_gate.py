"""The gate: held-out loss against the active version and the base model, and behaviour probes."""
from bot.store import registry
from trainer.evaluate import evaluate_version, gate_passed, load_probes
from tests.trainer.evaluate.stand_ins import Backends, Losses, good_tim, leaky_tim


async def test_rejects_label_leaking_candidate_and_accepts_a_good_one(db, settings, personas, make_version):
    tim = personas["tim"]
    active = await make_version(dataset="ds-1", status="candidate")
    await registry.set_active(db, active.name)
    good = await make_version(dataset="ds-2")
    leaky = await make_version(dataset="ds-2")
    # The leaking model fits its (leaking) data well: only the probes can catch it.
    losses = Losses({active.name: 1.30, good.name: 1.25, leaky.name: 1.10, "base": 2.40})
    backends = Backends({good.name: good_tim, leaky.name: leaky_tim})

    report = await evaluate_version(db, tim, leaky, data_dir=settings.core.data_dir, loss_fn=losses, backend_factory=backends)
    assert not report.passed
    assert report.probes_passed == 0 and len(report.probes) == len(load_probes(tim).probe)
    assert all(any("no_label_leakage" in f and "TIM" in f for f in p.failures) for p in report.probes)
    assert "probe 'greets-a-new-learner' failed: no_label_leakage" in report.reasons[0]
    stored = await registry.get_version(db, leaky.name)
    assert stored.status == "failed" and stored.status_reason.startswith("rejected by the evaluation gate: probe")
    assert not gate_passed(stored) and stored.metrics["eval"]["passed"] is False

    report = await evaluate_version(db, tim, good, data_dir=settings.core.data_dir, loss_fn=losses, backend_factory=backends)
    assert report.passed, report.summary()
    assert report.losses == {"candidate": 1.25, "active": 1.30, "base": 2.40}
    # All three losses are measured on the candidate's own validation set.
    val = settings.core.data_dir / "datasets" / "tim" / "ds-2" / "val.jsonl"
    assert {v for name, v in losses.calls if name in (good.name, active.name, "base")} == {val}
    stored = await registry.get_version(db, good.name)
    assert stored.status == "candidate" and gate_passed(stored)
    assert "gate PASSED (probes 6/6)" in report.summary()
    events = [e["event"] for e in await registry.events(db, "tim")]
    assert events[-2:] == ["gate_rejected", "gate_passed"]


async def test_loss_must_beat_base_and_not_regress(db, settings, personas, make_version):
    tim = personas["tim"]
    active = await make_version(status="candidate")
    await registry.set_active(db, active.name)
    worse = await make_version()
    backends = Backends({worse.name: good_tim})
    report = await evaluate_version(db, tim, worse, data_dir=settings.core.data_dir,
                                    loss_fn=Losses({active.name: 1.0, worse.name: 1.05, "base": 1.01}), backend_factory=backends)
    assert not report.passed
    assert any("does not beat the base model's 1.0100" in r for r in report.reasons)
    assert any(f"worse than the active {active.name}'s 1.0000 by more than 2%" in r for r in report.reasons)
    # Within the allowed regression it passes.
    report = await evaluate_version(db, tim, worse, data_dir=settings.core.data_dir,
                                    loss_fn=Losses({active.name: 1.04, worse.name: 1.05, "base": 2.0}), backend_factory=backends)
    assert report.passed, report.summary()
    assert (await registry.get_version(db, worse.name)).status == "candidate"  # a re-run that passes clears the rejection


async def test_unmeasurable_candidate_fails_but_missing_baselines_are_noted(db, settings, personas, make_version):
    tim = personas["tim"]
    v = await make_version()
    backends = Backends({v.name: good_tim})
    report = await evaluate_version(db, tim, v, data_dir=settings.core.data_dir,
                                    loss_fn=Losses({v.name: RuntimeError("CUDA out of memory"), "base": 2.0}), backend_factory=backends)
    assert not report.passed and report.reasons == ["held-out loss of the candidate could not be measured"]
    assert any("candidate loss failed: RuntimeError: CUDA out of memory" in n for n in report.notes)

    # An OpenAI fine-tune: no local validation file, the job's own validation loss counts; base not measurable.
    openai = await make_version(dataset="ds-openai", val=False, backend="openai", metrics={"val_loss": 0.9})
    backends.responders[openai.name] = good_tim
    report = await evaluate_version(db, tim, openai, data_dir=settings.core.data_dir, loss_fn=Losses({}), backend_factory=backends)
    assert report.passed, report.summary()
    assert any("recorded by its training run" in n for n in report.notes)
    assert any("base model loss not measured" in n for n in report.notes)


async def test_candidate_that_cannot_load_is_rejected(db, settings, personas, make_version):
    v = await make_version()

    def broken(persona, version):
        raise FileNotFoundError(f"no adapter_config.json in {version.adapter_path}")

    report = await evaluate_version(db, personas["tim"], v, data_dir=settings.core.data_dir,
                                    loss_fn=Losses({v.name: 1.0, "base": 2.0}), backend_factory=broken)
    assert not report.passed and "cannot load tim-v1 to run the probes: FileNotFoundError" in report.reasons[0]


async def test_no_probes_is_no_gate(db, settings, personas, make_version):
    from trainer.evaluate import ProbeSuite

    v = await make_version()
    report = await evaluate_version(db, personas["tim"], v, data_dir=settings.core.data_dir, suite=ProbeSuite(),
                                    loss_fn=Losses({v.name: 1.0, "base": 2.0}), backend_factory=Backends({}))
    assert report.reasons == ["no behaviour probes: add personas/tim/probes.toml"]
