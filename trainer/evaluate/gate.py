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
from bot.persona.spec import PersonaSpec
from bot.store import registry
from bot.store.db import utcnow
from bot.store.registry import ModelVersion
from trainer.evaluate.probes import ProbeResult, ProbeSuite, load_probes, run_probes

log = logging.getLogger(__name__)

REJECTED = "rejected by the evaluation gate"

#: Held-out loss of a version (None: the base model) on a validation file; None when it cannot be measured.
LossFn = Callable[[PersonaSpec, "ModelVersion | None", Path], Awaitable["float | None"]]
#: A backend serving the given version, for probes; closed when the context exits.
BackendFactory = Callable[[PersonaSpec, ModelVersion], AbstractAsyncContextManager[Backend]]


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
        lines += [f"  ✗ {r}" for r in self.reasons]
        lines += [f"  · {n}" for n in self.notes]
        return "\n".join(lines)


def validation_file(data_dir: Path, persona: str, dataset_version: str | None) -> Path | None:
    if not dataset_version:
        return None
    return Path(data_dir) / "datasets" / persona / dataset_version / "val.jsonl"


def decide(report: GateReport, suite: ProbeSuite) -> GateReport:
    """Fill in `passed` and `reasons` from the measured losses and probe results."""
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
    report.passed = not reasons
    return report


async def evaluate_version(
    db: aiosqlite.Connection, persona: PersonaSpec, version: ModelVersion, *, data_dir: Path,
    loss_fn: LossFn, backend_factory: BackendFactory, suite: ProbeSuite | None = None, record: bool = True,
) -> GateReport:
    """Run the gate for `version` against the persona's active version and base model."""
    suite = suite if suite is not None else load_probes(persona)
    active = await registry.active_version(db, persona.name)
    if active is not None and active.name == version.name:
        active = None   # evaluating the active version itself: compare with the base only
    report = GateReport(persona.name, version.name, active.name if active else None, version.base_model,
                        version.dataset_version, evaluated_at=utcnow())

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

    if suite.probe:
        try:
            async with backend_factory(persona, version) as backend:
                report.probes = await run_probes(backend, persona, suite)
        except Exception as exc:  # the candidate cannot even be loaded: that is a verdict, not a crash
            log.warning("cannot run probes on %s: %s", version.name, exc)
            report.reasons.append(f"cannot load {version.name} to run the probes: {type(exc).__name__}: {exc}")
    decide(report, suite)
    if record:
        await record_report(db, version, report)
    return report


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
