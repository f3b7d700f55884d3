"""One retraining run of one persona: check → synth → build → train → gate → promote → notify.

`run_pipeline(ctx, persona, trigger)`:

1. takes the persona's lock (`lock.persona_lock`) without waiting: a second run of the same
   persona is refused, and a run that crashed never leaves it held;
2. marks runs left `running` by a dead process as `interrupted`;
3. counts approved examples curated since the last run that trained. A `schedule` run with fewer
   than `[schedule].min_new_examples` is skipped, unless the active version is tainted (a
   member's data was forgotten: retrain without it). `force` and `taint` runs always train;
4. adds `[synthetic].per_run` synthetic conversations, builds a dataset version, trains a
   candidate, runs the evaluation gate, and, when it passes, acts by `[gate] promote`: `auto`
   promotes it (when `auto_promote` is on), `judge` only when a judge ran, and `review` never
   promotes by itself: it opens a human review (`trainer.review`) that the bot posts in the
   admin channel, and the run ends `awaiting`;
5. records the run in `training_runs` and reports it to the notifier (the persona's admin channel
   through the bot, else the log).

The steps are injected (`Steps`) so the loop is tested end to end with stand-ins; `default_steps()`
wires the real dataset builder, trainer, gate and promotion, importing them only when a run needs
them. A step that raises fails the run with its message; nothing is promoted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import aiosqlite

from bot.persona.spec import PersonaSpec
from bot.settings import Settings
from bot.store import registry
from bot.store.curation import training_scope
from bot.store.db import utcnow
from bot.store.registry import ModelVersion
from trainer.schedule import runs
from trainer.schedule.lock import LockBusy, persona_lock

log = logging.getLogger(__name__)

#: Posts a message for a persona (to its admin channel, through the bot). Must not raise for long.
Notifier = Callable[[str, str], Awaitable[None]]


async def log_notifier(persona: str, text: str) -> None:
    """The default notifier: the application log."""
    log.info("[%s] %s", persona, text)


@dataclass(frozen=True)
class BuiltDataset:
    version: str     # the folder name under datasets/<persona>/, recorded on model versions
    folder: Path


@dataclass
class RunContext:
    db: aiosqlite.Connection
    settings: Settings
    notifier: Notifier = log_notifier
    #: Called after a promotion in this process (e.g. `ModelSync.notify` when inside the bot).
    on_switched: Callable[[PersonaSpec, "ModelVersion | None"], Awaitable[None]] | None = None
    #: Background work a run leaves behind (the delayed unload of an old vLLM adapter).
    background: Callable[[Awaitable[object]], None] | None = None


@dataclass
class Steps:
    synthesize: Callable[[RunContext, PersonaSpec, int], Awaitable[int]]
    build: Callable[[RunContext, PersonaSpec], Awaitable[BuiltDataset]]
    train: Callable[[RunContext, PersonaSpec, BuiltDataset], Awaitable[ModelVersion]]
    evaluate: Callable[[RunContext, PersonaSpec, ModelVersion], Awaitable[object]]   # -> GateReport
    promote: Callable[[RunContext, PersonaSpec, ModelVersion], Awaitable[object]]    # -> PromotionResult


@dataclass
class RunOutcome:
    persona: str
    status: str                      # skipped | busy | promoted | awaiting | rejected | failed
    reason: str
    run_id: int | None = None
    new_examples: int = 0
    dataset_version: str | None = None
    model_version: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return self.status in runs.TRAINED


async def run_pipeline(ctx: RunContext, persona: PersonaSpec, trigger: str = "schedule", *,
                       steps: Steps | None = None) -> RunOutcome:
    """Run the retraining pipeline for one persona (see the module docstring)."""
    steps = steps or default_steps()
    try:
        with persona_lock(ctx.settings.core.data_dir, persona.name):
            return await _locked(ctx, persona, trigger, steps)
    except LockBusy as exc:
        log.info("%s", exc)
        return RunOutcome(persona.name, "busy", str(exc))


async def _locked(ctx: RunContext, persona: PersonaSpec, trigger: str, steps: Steps) -> RunOutcome:
    db = ctx.db
    await runs.mark_interrupted(db, persona.name)
    cutoff = utcnow()
    since = await runs.last_trained_cutoff(db, persona.name)
    # Counted within the persona's training scope: one guild's items never train another guild's persona.
    new = await runs.count_new_approved(db, persona.name, since, cutoff, await training_scope(db, persona))
    active = await registry.active_version(db, persona.name)
    tainted = active is not None and active.tainted
    needed = persona.schedule.min_new_examples
    if trigger == "schedule" and tainted:
        trigger = "taint"
    if trigger == "schedule" and new < needed:
        reason = (f"{new} new approved example(s) since {'the last run' if since else 'the start'}; "
                  f"a run needs {needed}")
        log.info("%s: scheduled run skipped: %s", persona.name, reason)
        run_id = await runs.start_run(db, persona.name, trigger, cutoff, new)
        await runs.finish_run(db, run_id, status="skipped", reason=reason)
        return RunOutcome(persona.name, "skipped", reason, run_id, new_examples=new)

    run_id = await runs.start_run(db, persona.name, trigger, cutoff, new)
    outcome = RunOutcome(persona.name, "failed", "", run_id, new)
    why = {"schedule": f"{new} new approved examples",
           "taint": f"the active version {active.name if active else ''} is tainted ({active.tainted_reason if active else ''})",
           "force": "forced by an admin"}.get(trigger, trigger)
    report: dict = {"trigger": trigger, "why": why}
    step = "start"
    try:
        step = "synthetic conversations"
        per_run = persona.synthetic.per_run
        if per_run:
            report["synthetic_added"] = await _timed(outcome, "synth", steps.synthesize(ctx, persona, per_run))
        step = "dataset build"
        dataset = await _timed(outcome, "build", steps.build(ctx, persona))
        outcome.dataset_version = dataset.version
        await runs.update_run(db, run_id, dataset_version=dataset.version)
        step = "training"
        version = await _timed(outcome, "train", steps.train(ctx, persona, dataset))
        outcome.model_version = version.name
        await runs.update_run(db, run_id, model_version=version.name)
        if version.status != "candidate":
            raise RuntimeError(f"{version.name} did not finish training: {version.status_reason or version.status}")
        step = "evaluation gate"
        gate = await _timed(outcome, "gate", steps.evaluate(ctx, persona, version))
        report["gate"] = gate.to_dict()
        if not gate.passed:
            outcome.status = "rejected"
            outcome.reason = f"{version.name} rejected by the gate: {gate.reasons[0] if gate.reasons else 'see report'}"
            notice = f"🛑 {persona.display_name}: retraining ({why}) produced {version.name}, which did not pass the gate.\n{gate.summary()}"
        elif persona.gate.promote == "review":
            step = "review"
            from trainer.review import start_review

            review = await start_review(db, persona, version.name, requested_by="scheduler")
            outcome.status = "awaiting"   # a human decides: the bot posts the review in the admin channel
            outcome.reason = (f"{version.name} passed the gate and waits for a human review "
                              f"(/model review persona:{persona.name}, or `personabot model review --persona {persona.name}`)")
            report["review_id"] = review.id
            notice = f"🧑‍⚖️ {persona.display_name}: {version.name} passed the gate and waits for your review.\n{gate.summary()}"
        elif persona.gate.promote == "judge" and getattr(gate, "judge", None) is None:
            outcome.status = "awaiting"
            outcome.reason = (f"{version.name} passed the gate, but promote = \"judge\" and no judge ran "
                              f"([gate] judge = {persona.gate.judge!r}); promote it with `personabot model promote`")
            notice = f"✅ {persona.display_name}: {version.name} passed the gate without a judge and awaits promotion.\n{gate.summary()}"
        elif not persona.schedule.auto_promote:
            outcome.status = "awaiting"   # trained and gated, left for an admin to promote
            outcome.reason = f"{version.name} passed the gate; auto_promote is off, promote it with `personabot model promote`"
            notice = f"✅ {persona.display_name}: {version.name} passed the gate and awaits promotion.\n{gate.summary()}"
        else:
            step = "promotion"
            result = await _timed(outcome, "promote", steps.promote(ctx, persona, version))
            outcome.status = "promoted"
            outcome.reason = result.summary()
            notice = f"🚀 {persona.display_name}: {result.summary()} ({why}).\n{gate.summary()}"
    except asyncio.CancelledError:
        # The trainer is stopping (SIGTERM): training has checkpointed; the next run resumes from it.
        reason = f"stopped during {step} (the trainer was shut down); the next run resumes from the last checkpoint"
        log.info("%s: run %s interrupted: %s", persona.name, run_id, reason)
        report["timings_s"] = outcome.timings
        await runs.finish_run(db, run_id, status="interrupted", reason=reason,
                              dataset_version=outcome.dataset_version, model_version=outcome.model_version, report=report)
        raise
    except Exception as exc:  # any failing step fails the run, with its message; nothing was promoted
        log.exception("%s: training run failed during %s", persona.name, step)
        outcome.status = "failed"
        outcome.reason = f"{step} failed: {type(exc).__name__}: {exc}"
        notice = f"⚠️ {persona.display_name}: retraining ({why}) failed during {step}: {type(exc).__name__}: {exc}"
    report["timings_s"] = outcome.timings
    await runs.finish_run(db, run_id, status=outcome.status, reason=outcome.reason, notice=notice,
                          dataset_version=outcome.dataset_version, model_version=outcome.model_version, report=report)
    try:
        await ctx.notifier(persona.name, notice)
        await runs.mark_notified(db, run_id)
    except Exception:  # the admin channel being unreachable must not fail the run; the notice stays pending
        log.exception("%s: could not post the run's result", persona.name)
    log.info("%s: run %s %s: %s", persona.name, run_id, outcome.status, outcome.reason)
    return outcome


async def _timed(outcome: RunOutcome, name: str, awaitable):
    started = time.perf_counter()
    try:
        return await awaitable
    finally:
        outcome.timings[name] = round(time.perf_counter() - started, 3)


# -- the real steps -------------------------------------------------------------------------------


def default_steps() -> Steps:
    return Steps(synthesize=_synthesize, build=_build, train=_train, evaluate=_evaluate, promote=_promote)


async def _synthesize(ctx: RunContext, persona: PersonaSpec, count: int) -> int:
    try:
        from trainer.synth import add_conversations
    except ImportError:
        raise RuntimeError("[synthetic] per_run needs trainer.synth.add_conversations(db, settings, persona, count); "
                           "set per_run = 0 or run `personabot synth` by hand") from None
    return await add_conversations(ctx.db, ctx.settings, persona, count)


async def _build(ctx: RunContext, persona: PersonaSpec) -> BuiltDataset:
    from trainer.dataset.build import build_dataset
    from trainer.dataset.tokens import load_tokenizer

    # Token counts with the persona's own tokenizer when it is available offline, else an estimate.
    tokenizer = load_tokenizer(persona.model.model, models_dir=ctx.settings.core.models_dir)
    result = await build_dataset(ctx.db, persona=persona, data_dir=ctx.settings.core.data_dir, tokenizer=tokenizer)
    return BuiltDataset(Path(result.folder).name, Path(result.folder))


async def _train(ctx: RunContext, persona: PersonaSpec, dataset: BuiltDataset) -> ModelVersion:
    from trainer.finetune.runner import run_training

    return await run_training(ctx.db, ctx.settings, persona, dataset.folder)


async def _evaluate(ctx: RunContext, persona: PersonaSpec, version: ModelVersion):
    from trainer.evaluate.gate import evaluate_version
    from trainer.evaluate.runtime import backend_factory, judge_factory, loss_fn, role_check

    return await evaluate_version(ctx.db, persona, version, data_dir=ctx.settings.core.data_dir,
                                  loss_fn=loss_fn(ctx.settings), backend_factory=backend_factory(ctx.settings),
                                  judge_factory=judge_factory(ctx.settings), role_check=role_check(ctx.settings))


async def _promote(ctx: RunContext, persona: PersonaSpec, version: ModelVersion):
    from trainer.promote import promote, unload_after_grace

    result = await promote(ctx.db, ctx.settings, persona, version.name, on_switched=ctx.on_switched, by="scheduler")
    if result.unload_pending and ctx.background is not None:
        ctx.background(unload_after_grace(ctx.settings, persona, result.unload_pending, db=ctx.db))
    return result
