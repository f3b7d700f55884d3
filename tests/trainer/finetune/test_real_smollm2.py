"""One real run: LoRA on SmolLM2-135M-Instruct over a small TutorChatbot-derived dataset.

Needs ../shared (the TutorChatbot corpus) and the SmolLM2 weights: the folder named by
`PERSONABOT_SMOLLM2_DIR`, else `bot.backends.local_models.resolve_model` fetches and converts the
embedded model once into `<repo>/data/models`. Skips when either is unavailable.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.persona.training import TrainingSpec
from tests.conftest import REPO
from tests.trainer.finetune.conftest import write_dataset
from trainer.finetune.config import resolve
from trainer.finetune.heldout import evaluate_loss
from trainer.finetune.lora import train_lora

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SYSTEM = "You are TIM, a compassionate tutor. Keep replies short and kind."


def smollm2_dir() -> Path:
    named = os.environ.get("PERSONABOT_SMOLLM2_DIR")
    if named:
        return Path(named)
    try:
        from bot.backends.local_models import resolve_model
    except ImportError:
        pytest.skip("no SmolLM2 folder: set PERSONABOT_SMOLLM2_DIR or install the local backend")
    try:
        return Path(resolve_model("smollm2-135m-instruct", REPO / "data" / "models"))
    except Exception as exc:  # offline without the wheel
        pytest.skip(f"SmolLM2 unavailable: {exc}")


def tutor_convo(path: Path, max_exchanges: int = 1) -> list[dict] | None:
    """A 'User: …' / 'TIM: …' transcript → chat messages (first exchanges only, to keep rows short)."""
    messages = [{"role": "system", "content": SYSTEM}]
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


def test_smollm2_lora_lowers_heldout_loss(shared_dir, tmp_path):
    model_dir = smollm2_dir()
    files = sorted((shared_dir / "data" / "tutorchatbot" / "convos").glob("*.txt"))
    convos = [c for c in (tutor_convo(p) for p in files[::8]) if c][:48]
    assert len(convos) >= 40
    train, val = convos[:40], convos[40:48]
    ds = write_dataset(tmp_path / "data", "tim", "tutor-small", [{"messages": c} for c in train],
                       [{"messages": c} for c in val])
    config = resolve(TrainingSpec(rank=8, alpha=16, learning_rate=1e-3, batch_size=4, max_length=256, logging_steps=1,
                                  eval_steps=1000, save_steps=1000, warmup_ratio=0.0, lr_scheduler="constant"),
                     device="cpu", max_steps=5)
    result = train_lora(model_dir, ds / "train.jsonl", ds / "val.jsonl", tmp_path / "run", tmp_path / "adapter", config,
                        system_prompt=SYSTEM)
    print(f"\nSmolLM2 held-out loss: base {result.val_loss_base:.4f} -> tuned {result.val_loss_final:.4f}; "
          f"train {result.train_loss_first:.4f} -> {result.train_loss_last:.4f}; {result.tokens_per_s:.0f} tok/s")
    assert result.val_loss_final < result.val_loss_base
    # The gate's function agrees with the trainer's own measurement.
    tuned = evaluate_loss(model_dir, tmp_path / "adapter", ds / "val.jsonl", system_prompt=SYSTEM, max_length=256)
    assert tuned == pytest.approx(result.val_loss_final, rel=1e-3)
