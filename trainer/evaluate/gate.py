"""The evaluation gate: may this candidate replace the persona's active version?

`evaluate_version(...)` measures, on the candidate's own validation set (`val.jsonl` of its dataset
version), the held-out loss of the candidate, the active version and the base model, runs the
persona's behaviour probes against the candidate, and decides:

- the candidate's loss must be below the base model's (`must_beat_base`), and at most
  `max_loss_regression` (relative) above the active version's. A loss that cannot be measured for
  the candidate fails the gate; for the active version or the base model the comparison is skipped
  and the report says so (an OpenAI fine-tune, for example, reports its own validation loss but
  its base model cannot be measured);
- at least `min_pass_rate` of the probes must pass, and a persona with no probes fails: a gate
  that checks no behaviour is not a gate.

Substance (`[gate]` in the persona spec, `bot.persona.gate`): the gate samples `samples` held-out
contexts (the probes first, then validation conversations cut before an assistant turn), gets the
candidate's reply and the baseline's (the active version's, else the base model's) for each, and

- asks the judge (`judge_factory`, by `[gate] judge` or the `judge` override) to compare every
  pair in both orders against the persona's `rubric.md` (`trainer.evaluate.judge`): the candidate
  needs a win rate of at least `min_win_rate`, ties counted half. A configured judge that cannot
  run, or whose answers are all unreadable, fails the gate;
- checks role confusion (`role_check`, `trainer.evaluate.roles`): the share of the candidate's
  replies written as the member may exceed the baseline's by at most `max_role_confusion_increase`.

Without a judge factory and a role check (or with `judge = "none"`) only losses and probes count.

The report (`GateReport`) says why in one line per reason, is stored in the version's metrics
(`metrics["eval"]`) with a registry event, and a rejected candidate's status becomes `failed`
with the first reason. Measuring is injected (`LossFn`, `BackendFactory`), so the gate itself is
plain logic; `trainer.evaluate.runtime` provides the real ones.
"""
from __future__ import annotations

import logging
import math
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import aiosqlite

from bot.backends.base import Backend
from bot.persona.gate import GateSpec
from bot.persona.spec import PersonaSpec
from bot.store import registry
from bot.store.db import utcnow
from bot.store.registry import ModelVersion
from trainer.evaluate.judge import DEFAULT_RUBRIC, RUBRIC_FILE, Case, Judge, judge_pairs
from trainer.evaluate.probes import ProbeResult, ProbeSuite, context_turns, generate, load_probes, run_probes

log = logging.getLogger(__name__)

REJECTED = "rejected by the evaluation gate"

#: Held-out loss of a version (None: the base model) on a validation file; None when it cannot be measured.
LossFn = Callable[[PersonaSpec, "ModelVersion | None", Path], Awaitable["float | None"]]
#: A backend serving the given version (None: the base model), for probes and replies; closed when the context exits.
BackendFactory = Callable[[PersonaSpec, "ModelVersion | None"], AbstractAsyncContextManager[Backend]]
#: The judge named by a judge spec ("openai:MODEL", "local", ...); closed when the context exits.
JudgeFactory = Callable[[PersonaSpec, str], AbstractAsyncContextManager[Judge]]
#: Which (context, reply) pairs are written as the member instead of as the persona.
RoleCheck = Callable[[PersonaSpec, list[tuple[list[dict], str]]], Awaitable[list[bool]]]


@dataclass
class GateReport:
    persona: str
    candidate: str
    active: str | None
    base_model: str
    dataset_version: str | None
    passed: bool = False
    reasons: list[str] = field(default_factory=list)     # why it failed; empty when it passed
    notes: list[str] = field(default_factory=list)       # what was skipped or worth knowing
    losses: dict[str, float | None] = field(default_factory=dict)   # candidate, active, base
    probes: list[ProbeResult] = field(default_factory=list)
    judge: dict | None = None            # JudgeResult.to_dict(), when a judge ran
    role_confusion: dict | None = None   # {"candidate": rate, "baseline": rate, "flagged": [...]}
    samples: list[dict] = field(default_factory=list)   # the compared pairs: {context, messages, candidate, baseline}
    baseline: str | None = None          # what the candidate's replies were compared with
    evaluated_at: str = ""

    @property
    def probes_passed(self) -> int:
        return sum(p.passed for p in self.probes)

    def to_dict(self) -> dict:
        return {
            "persona": self.persona, "candidate": self.candidate, "active": self.active,
            "base_model": self.base_model, "dataset_version": self.dataset_version, "passed": self.passed,
            "reasons": self.reasons, "notes": self.notes, "losses": self.losses,
            "probes": [p.to_dict() for p in self.probes], "probes_passed": self.probes_passed,
            "judge": self.judge, "role_confusion": self.role_confusion, "samples": self.samples, "baseline": self.baseline,
            "evaluated_at": self.evaluated_at,
        }

    def summary(self) -> str:
        """A few lines for the terminal and the admin channel."""
        verdict = "PASSED" if self.passed else "REJECTED"
        lines = [f"{self.candidate}: gate {verdict} (probes {self.probes_passed}/{len(self.probes)})"]

        def fmt(v):
            return "n/a" if v is None else f"{v:.4f}"

        lines.append("held-out loss: " + ", ".join(
            f"{k} {fmt(self.losses.get(k))}" for k in ("candidate", "active", "base") if k in self.losses))
        if self.judge is not None:
            j = self.judge
            rate = "n/a" if j["win_rate"] is None else f"{j['win_rate']:.2f}"
            lines.append(f"judge {j['judge']} vs {j['baseline']}: win rate {rate} over {j['pairs']} pairs "
                         f"({j['wins']} wins, {j['losses']} losses, {j['ties']} ties; {j['unparsed']} unreadable answers)")
        if self.role_confusion is not None:
            r = self.role_confusion
            lines.append(f"role confusion: candidate {r['candidate']:.0%}, {r['baseline_name']} {r['baseline']:.0%} "
                         f"of {r['replies']} replies written as the member")
        lines += [f"  ✗ {r}" for r in self.reasons]
        lines += [f"  · {n}" for n in self.notes]
        return "\n".join(lines)


def validation_file(data_dir: Path, persona: str, dataset_version: str | None) -> Path | None:
    if not dataset_version:
        return None
    return Path(data_dir) / "datasets" / persona / dataset_version / "val.jsonl"


def decide(report: GateReport, suite: ProbeSuite, spec: GateSpec | None = None) -> GateReport:
    """Fill in `passed` and `reasons` from the measured losses, probe results, judge and role check."""
    spec = spec or GateSpec()
    gate = suite.gate
    candidate, active, base = (report.losses.get(k) for k in ("candidate", "active", "base"))
    reasons = report.reasons
    if candidate is None or not math.isfinite(candidate):
        reasons.append("held-out loss of the candidate could not be measured")
    else:
        if gate.must_beat_base:
            if base is None:
                report.notes.append("base model loss not measured: the comparison with the base model was skipped")
            elif candidate >= base:
                reasons.append(f"held-out loss {candidate:.4f} does not beat the base model's {base:.4f}")
        if report.active is not None:
            if active is None:
                report.notes.append(f"loss of the active version {report.active} not measured: that comparison was skipped")
            else:
                limit = active * (1 + gate.max_loss_regression)
                if candidate > limit:
                    reasons.append(f"held-out loss {candidate:.4f} is worse than the active {report.active}'s {active:.4f} "
                                   f"by more than {gate.max_loss_regression:.0%}")
    if not suite.probe:
        reasons.append(f"no behaviour probes: add personas/{report.persona}/probes.toml")
    elif not report.probes:
        pass  # the probes could not run; the reason is already recorded
    else:
        rate = report.probes_passed / len(report.probes)
        if rate < gate.min_pass_rate:
            for p in report.probes:
                if not p.passed:
                    reasons.append(f"probe {p.name!r} failed: " + "; ".join(p.failures))
    if report.judge is not None:
        j = report.judge
        answers = 2 * j["pairs"]
        if not j["pairs"]:
            reasons.append("the judge had no pairs to compare (no held-out contexts)")
        elif j["unparsed"] >= answers:
            reasons.append(f"none of the judge's {answers} answers could be read")
        elif j["win_rate"] < spec.min_win_rate:
            reasons.append(f"judge win rate {j['win_rate']:.2f} against {j['baseline']} is below {spec.min_win_rate:.2f} "
                           f"({j['wins']} wins, {j['losses']} losses, {j['ties']} ties)")
    if report.role_confusion is not None:
        r = report.role_confusion
        if r["candidate"] > r["baseline"] + spec.max_role_confusion_increase:
            reasons.append(f"role confusion {r['candidate']:.0%} of replies written as the member, against "
                           f"{r['baseline_name']}'s {r['baseline']:.0%} (allowed increase {spec.max_role_confusion_increase:.0%})")
    report.passed = not reasons
    return report


async def evaluate_version(
    db: aiosqlite.Connection, persona: PersonaSpec, version: ModelVersion, *, data_dir: Path,
    loss_fn: LossFn, backend_factory: BackendFactory, suite: ProbeSuite | None = None, record: bool = True,
    judge_factory: JudgeFactory | None = None, role_check: RoleCheck | None = None,
    judge: str | None = None, samples: int | None = None, progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Run the gate for `version` against the persona's active version and base model.

    `judge` and `samples` override the persona's `[gate] judge` and `samples` (`eval --judge/--samples`)."""
    say = progress or (lambda text: None)
    suite = suite if suite is not None else load_probes(persona)
    judge_spec = judge if judge is not None else persona.gate.judge
    use_judge = judge_spec != "none" and judge_factory is not None
    active = await registry.active_version(db, persona.name)
    if active is not None and active.name == version.name:
        active = None   # evaluating the active version itself: compare with the base only
    report = GateReport(persona.name, version.name, active.name if active else None, version.base_model,
                        version.dataset_version, evaluated_at=utcnow())
    if judge_spec != "none" and judge_factory is None:
        report.notes.append(f"judge {judge_spec} not run: this caller gave the gate no way to open a judge")

    val = validation_file(data_dir, persona.name, version.dataset_version)
    if val is None or not val.is_file():
        recorded = version.metrics.get("val_loss")
        report.losses["candidate"] = float(recorded) if isinstance(recorded, (int, float)) else None
        report.notes.append(f"no validation set at {val}" if val else "the version records no dataset version")
        if report.losses["candidate"] is not None:
            report.notes.append("candidate loss is the validation loss recorded by its training run")
    else:
        report.losses["candidate"] = await _loss(loss_fn, persona, version, val, report, "candidate")
        if active is not None:
            if active.base_model != version.base_model:
                report.notes.append(f"active version {active.name} has another base model ({active.base_model}); "
                                    "losses are not comparable")
                report.losses["active"] = None
            else:
                report.losses["active"] = await _loss(loss_fn, persona, active, val, report, "active")
        report.losses["base"] = await _loss(loss_fn, persona, None, val, report, "base")

    # A review persona needs reply pairs for its human reviewers, judge or not.
    compare = use_judge or role_check is not None or persona.gate.promote == "review"
    contexts = sample_contexts(persona, suite, val, samples or persona.gate.samples) if compare else []
    candidate_replies: list[str] | None = None
    if suite.probe or contexts:
        try:
            async with backend_factory(persona, version) as backend:
                if suite.probe:
                    say(f"running {len(suite.probe)} behaviour probes on {version.name}")
                    report.probes = await run_probes(backend, persona, suite)
                say(f"{version.name}: replying to {len(contexts)} held-out contexts")
                # The probes come first among the contexts: their replies are already there.
                known = [p.reply for p in report.probes if p.finish != "error"]
                candidate_replies = known[: len(contexts)] if len(known) == len(report.probes) else []
                candidate_replies += await _replies(backend, persona, suite, contexts[len(candidate_replies):])
        except Exception as exc:  # the candidate cannot even be loaded: that is a verdict, not a crash
            log.warning("cannot run probes on %s: %s", version.name, exc)
            report.reasons.append(f"cannot load {version.name} to run the probes: {type(exc).__name__}: {exc}")
    if contexts and candidate_replies is not None:
        baseline_name = active.name if active is not None else f"the base model {version.base_model}"
        try:
            async with backend_factory(persona, active) as backend:
                say(f"{baseline_name}: replying to {len(contexts)} held-out contexts")
                baseline_replies = await _replies(backend, persona, suite, contexts)
        except Exception as exc:
            log.warning("cannot get the baseline's replies: %s", exc)
            report.reasons.append(f"cannot load {baseline_name} to compare with: {type(exc).__name__}: {exc}")
            baseline_replies = None
        if baseline_replies is not None:
            cases = [Case(name, messages, c, b) for (name, messages), c, b in zip(contexts, candidate_replies, baseline_replies)]
            report.baseline = baseline_name
            report.samples = [{"context": c.name, "messages": c.context, "candidate": c.candidate, "baseline": c.baseline}
                              for c in cases]
            if role_check is not None:
                say("checking role confusion")
                await _role_confusion(report, persona, role_check, cases, baseline_name)
            if use_judge:
                say(f"judging {len(cases)} pairs in both orders with {judge_spec}")
                await _judge(report, persona, judge_factory, judge_spec, cases, baseline_name)
    decide(report, suite, persona.gate)
    if record:
        await record_report(db, version, report)
    return report


def sample_contexts(persona: PersonaSpec, suite: ProbeSuite, val: Path | None, n: int, *,
                    seed: int = 0) -> list[tuple[str, list[dict]]]:
    """Up to `n` held-out contexts, each ending with the member's turn: the probes first, then
    validation conversations (cut before one of their assistant turns, chosen at random with `seed`)."""
    import json
    import random

    found = [(p.name, p.messages()) for p in suite.probe][:n]
    if val is None or not val.is_file() or len(found) >= n:
        return found
    cuts: list[tuple[str, list[dict]]] = []
    rng = random.Random(seed)
    for line_no, line in enumerate(val.read_text(encoding="utf-8").splitlines(), 1):
        try:
            messages = [m for m in json.loads(line)["messages"] if m.get("role") in ("user", "assistant")]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s: line %d is not a {\"messages\": [...]} record; not sampled", val, line_no)
            continue
        ends = [i for i in range(1, len(messages)) if messages[i]["role"] == "assistant" and messages[i - 1]["role"] == "user"]
        if ends:
            cuts.append((f"val-{line_no}", messages[: rng.choice(ends)]))
    rng.shuffle(cuts)
    return found + cuts[: n - len(found)]


async def _replies(backend: Backend, persona: PersonaSpec, suite: ProbeSuite, contexts) -> list[str]:
    from bot.backends.base import BackendError

    replies = []
    for _, messages in contexts:
        try:
            _, reply = await generate(backend, persona, context_turns(persona, messages), suite.defaults)
        except BackendError as exc:
            log.warning("no reply for a held-out context: %s", exc)
            reply = ""
        replies.append(reply)
    return replies


def load_rubric(persona: PersonaSpec) -> str | None:
    """The persona's `rubric.md`, or None when it has none."""
    try:
        path = persona.data_file(RUBRIC_FILE)
    except ValueError:
        return None
    return path.read_text(encoding="utf-8") if path.is_file() else None


async def _judge(report: GateReport, persona: PersonaSpec, judge_factory: JudgeFactory, spec: str, cases: list[Case],
                 baseline_name: str) -> None:
    rubric = load_rubric(persona)
    if rubric is None:
        report.notes.append(f"no personas/{persona.name}/{RUBRIC_FILE}: the judge used a generic rubric")
        rubric = DEFAULT_RUBRIC
    try:
        async with judge_factory(persona, spec) as judge:
            result = await judge_pairs(judge, persona, rubric, cases, baseline=baseline_name)
    except Exception as exc:  # a configured judge that cannot run fails the gate rather than waving it through
        log.warning("judge %s failed: %s", spec, exc)
        report.reasons.append(f"judge {spec} could not run: {type(exc).__name__}: {exc}")
        return
    report.judge = result.to_dict()
    if result.unparsed:
        report.notes.append(f"{result.unparsed} of the judge's {2 * len(result.pairs)} answers could not be read (counted as no preference)")


async def _role_confusion(report: GateReport, persona: PersonaSpec, role_check: RoleCheck, cases: list[Case],
                          baseline_name: str) -> None:
    items = [(c.context, c.candidate) for c in cases] + [(c.context, c.baseline) for c in cases]
    try:
        flags = await role_check(persona, items)
    except Exception as exc:
        log.warning("role-confusion check failed: %s", exc)
        report.notes.append(f"role-confusion check failed: {type(exc).__name__}: {exc}")
        return
    n = len(cases)
    cand, base = flags[:n], flags[n:]
    report.role_confusion = {
        "candidate": sum(cand) / n if n else 0.0, "baseline": sum(base) / n if n else 0.0, "baseline_name": baseline_name,
        "replies": n, "flagged": [{"context": c.name, "reply": c.candidate} for c, f in zip(cases, cand) if f],
    }


async def _loss(loss_fn: LossFn, persona, version, val: Path, report: GateReport, which: str) -> float | None:
    try:
        return await loss_fn(persona, version, val)
    except Exception as exc:  # a failed measurement is reported, never a crash of the gate
        log.warning("held-out loss of %s failed: %s", which, exc)
        report.notes.append(f"{which} loss failed: {type(exc).__name__}: {exc}")
        return None


async def record_report(db: aiosqlite.Connection, version: ModelVersion, report: GateReport) -> None:
    """Store the report in the version's metrics, log the event, and fail a rejected candidate."""
    current = await registry.get_version(db, version.name)
    metrics = dict(current.metrics if current else version.metrics)
    metrics["eval"] = report.to_dict()
    status = None
    rejected_before = current is not None and current.status == "failed" and (current.status_reason or "").startswith(REJECTED)
    if current is not None and (current.status == "candidate" or rejected_before):
        # Only the gate's own verdicts move: a version whose training failed stays failed.
        status = "candidate" if report.passed else "failed"
    reason = None if report.passed else f"{REJECTED}: {report.reasons[0]}"
    await registry.update_version(db, version.name, metrics=metrics, status=status, reason=reason)
    await registry.record_event(db, version.persona, version.name, "gate_passed" if report.passed else "gate_rejected",
                                "; ".join(report.reasons) or None)


def gate_passed(version: ModelVersion) -> bool:
    """Did the last gate run on this version pass?"""
    return bool(version.metrics.get("eval", {}).get("passed"))
