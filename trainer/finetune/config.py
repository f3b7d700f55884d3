"""Resolved run settings: a persona's `[training]` spec plus what the machine decides (device, precision).

`resolve(spec, ...)` is pure (no torch import unless `device` is 'auto'), so the CLI can show and
record the exact hyperparameters before any heavy work starts. `fingerprint()` identifies a run:
the same persona, dataset, base model and hyperparameters map to the same run folder, which is how
an interrupted run finds its checkpoints again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from bot.persona.training import TrainingSpec


@dataclass(frozen=True)
class LoraRunConfig:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    epochs: float = 2.0
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_length: int = 1024
    packing: bool = False
    group_by_length: bool = True
    precision: str = "fp32"             # resolved: bf16 | fp16 | fp32
    gradient_checkpointing: bool = False
    system_prompt_policy: str = "persona"
    logging_steps: int = 5
    eval_steps: int = 50
    save_steps: int = 50
    save_total_limit: int = 2
    seed: int = 42
    device: str = "cpu"                 # resolved: cpu | cuda | mps
    max_steps: int = -1                 # > 0 caps optimizer steps (smoke runs); -1 = from epochs
    extra: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        d.pop("extra")
        return d

    def fingerprint(self, *parts: str) -> str:
        """Short hash of everything that changes the trained weights (plus `parts`, e.g. dataset and base model)."""
        d = self.as_dict()
        for volatile in ("logging_steps", "eval_steps", "save_steps", "save_total_limit", "device"):
            d.pop(volatile)
        blob = json.dumps([d, *parts], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def detect_device(local_device: str = "auto") -> str:
    if local_device not in ("auto", ""):
        return local_device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve(spec: TrainingSpec, *, device: str = "auto", max_steps: int | None = None, **overrides) -> LoraRunConfig:
    """The concrete run configuration for `spec` on this machine."""
    device = detect_device(device)
    precision = spec.precision
    if precision == "auto":
        precision = "fp32"
        if device == "cuda":
            import torch

            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "cpu" and precision == "fp16":
        raise ValueError("precision 'fp16' needs a GPU; use 'fp32' or 'bf16' on the CPU")
    checkpointing = {"on": True, "off": False}.get(spec.gradient_checkpointing, device != "cpu")
    values = dict(
        rank=spec.rank, alpha=spec.alpha, dropout=spec.dropout, target_modules=tuple(spec.target_modules),
        epochs=spec.epochs, learning_rate=spec.learning_rate, lr_scheduler=spec.lr_scheduler,
        warmup_ratio=spec.warmup_ratio, weight_decay=spec.weight_decay, max_grad_norm=spec.max_grad_norm,
        batch_size=spec.batch_size, gradient_accumulation=spec.gradient_accumulation, max_length=spec.max_length,
        packing=spec.packing, group_by_length=spec.group_by_length and not spec.packing, precision=precision,
        gradient_checkpointing=checkpointing, system_prompt_policy=spec.system_prompt, logging_steps=spec.logging_steps,
        eval_steps=spec.eval_steps, save_steps=spec.save_steps, save_total_limit=spec.save_total_limit, seed=spec.seed,
        device=device, max_steps=max_steps if max_steps and max_steps > 0 else -1,
    )
    values.update(overrides)
    return LoraRunConfig(**values)
