"""`build_twin`: dataset build → train → eval from the sources already imported, with one progress
callback, ending with the gate's report and the twin's first replies to its probes.

`progress(stage, detail, done, total)` is called with stage "dataset", "train" or "eval" so a caller
can show one display (a rich bar in the terminal, a DM edited now and then in Discord). A candidate
that passes the gate is promoted at once when the twin's `[gate] promote` is "auto" (the template's);
`promote_anyway` also serves a rejected one. Errors a member can fix (no sources, nothing usable)
raise `TwinError` with one line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import aiosqlite

from bot.persona.spec import PersonaSpec
from bot.settings import Settings
from trainer.twin import TwinError

Progress = Callable[[str, str, int | None, int | None], None]


def _quiet(stage: str, detail: str, done: int | None, total: int | None) -> None:
    pass


@dataclass
class TwinBuildResult:
    twin: str
    dataset: str = ""
    counts: dict = field(default_factory=dict)
    version: str | None = None
    status: str = ""
    reason: str | None = None
    gate: dict = field(default_factory=dict)
    gate_summary: str = ""
    replies: list[dict] = field(default_factory=list)      # probe name, prompt, reply, passed
    promoted: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        c = self.counts
        lines = [f"Dataset {self.dataset}: {c.get('train_examples', 0)} train / {c.get('val_examples', 0)} val examples "
                 f"({c.get('examples_from_conversations', 0)} from conversations, {c.get('examples_from_posts', 0)} from posts)."]
        if self.version:
            lines.append(f"Model {self.version}: {self.status}" + (f" ({self.reason})" if self.reason and self.status != "candidate" else ""))
        if self.gate_summary:
            lines.append(self.gate_summary)
        for r in self.replies:
            lines.append(f"  {r['probe']}: {r['prompt']!r} -> {r['reply']!r}")
        lines.append(f"{self.twin} now answers with {self.version}." if self.promoted else
                     f"Not promoted: chat still uses the base model. Promote anyway with "
                     f"`personabot model promote --persona {self.twin} --version {self.version} --force`." if self.version else "")
        return "\n".join(line for line in lines if line)


async def build_twin(db: aiosqlite.Connection, settings: Settings, spec: PersonaSpec, *, max_steps: int | None = None,
                     prompted_posts: bool = True, promote_anyway: bool = False, progress: Progress = _quiet,
                     base_model_dir=None) -> TwinBuildResult:
    from trainer.dataset.build import BuildError, BuildOptions, build_dataset
    from trainer.dataset.tokens import load_tokenizer
    from trainer.evaluate.gate import evaluate_version
    from trainer.evaluate.probes import load_probes
    from trainer.evaluate.runtime import backend_factory, judge_factory, loss_fn, role_check
    from trainer.finetune.runner import TrainingSetupError, run_training
    from trainer.promote import PromotionError, promote
    from trainer.sources import list_sources

    result = TwinBuildResult(spec.name)
    if not await list_sources(db, spec.name):
        raise TwinError(f"{spec.name} has no imported sources yet: import an export first "
                        f"(`personabot import twitter archive.zip --persona {spec.name}` or /twin import)")
    tok = load_tokenizer(spec.model.model, models_dir=settings.core.models_dir)
    try:
        built = await build_dataset(db, persona=spec, data_dir=settings.core.data_dir, tokenizer=tok,
                                    options=BuildOptions(prompted_posts=prompted_posts),
                                    progress=lambda step, done, total: progress("dataset", step, done, total))
    except BuildError as exc:
        raise TwinError(str(exc)) from None
    result.dataset, result.counts = built.folder.name, built.manifest["counts"]

    def on_train(event: dict) -> None:
        if event.get("phase") == "train":
            progress("train", f"loss {event['loss']:.3f}" if "loss" in event else "training", event.get("step"), event.get("max_steps"))
        elif event.get("phase") == "start":
            progress("train", f"{event['version']} on {event['device']}", 0, None)

    try:
        version = await run_training(db, settings, spec, built.folder, "local", progress=on_train, max_steps=max_steps,
                                     base_model_dir=base_model_dir)
    except TrainingSetupError as exc:
        raise TwinError(str(exc)) from None
    result.version, result.status, result.reason = version.name, version.status, version.status_reason
    if version.status != "candidate":
        return result
    probes = load_probes(spec).probe
    progress("eval", "held-out loss and probes", 0, len(probes))
    # The same gate as `personabot eval`: loss, probes, and the judge and role check the twin's [gate] asks for.
    report = await evaluate_version(db, spec, version, data_dir=settings.core.data_dir,
                                    loss_fn=loss_fn(settings), backend_factory=backend_factory(settings),
                                    judge_factory=judge_factory(settings), role_check=role_check(settings),
                                    progress=lambda text: progress("eval", text, 0, len(probes)))
    progress("eval", "done", len(probes), len(probes))
    result.gate, result.gate_summary = report.to_dict(), report.summary()
    prompts = {p.name: p.prompt or (p.conversation[-1].content if p.conversation else "") for p in probes}
    result.replies = [{"probe": p.name, "prompt": prompts.get(p.name, ""), "reply": p.reply, "passed": p.passed}
                      for p in report.probes]
    # A passing candidate is served at once unless the twin's [gate] promote asks for a judge or a human.
    if (report.passed and spec.gate.promote == "auto") or promote_anyway:
        try:
            await promote(db, settings, spec, version.name, force=not report.passed)
            result.promoted = True
        except PromotionError as exc:
            result.reason = str(exc)
    from bot.store.registry import get_version

    current = await get_version(db, version.name)
    result.status = current.status if current else result.status
    return result
