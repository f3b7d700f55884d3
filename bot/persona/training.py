"""`[training]` section of a persona spec: LoRA / fine-tuning hyperparameters (owned by the trainer).

Every option has a default that works for a small persona dataset (a few hundred conversations) on
a ~135M-1B model; the description says why the default is what it is. `trainer.finetune.config`
resolves these into the concrete run settings (device, precision, steps). OpenAI-only options live
in `[training.openai]`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenAITrainingSpec(BaseModel):
    """`[training.openai]`: options of an OpenAI fine-tuning job (`method = "openai"`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        None, description="Base model to fine-tune (e.g. 'gpt-4.1-mini-2025-04-14'); default: the persona's [model].model."
    )
    suffix: str | None = Field(
        None, max_length=64, description="Suffix of the fine-tuned model name; default: the registry version name (tim-v3)."
    )
    n_epochs: int | None = Field(None, ge=1, le=50, description="Epochs; unset lets OpenAI choose ('auto').")
    batch_size: int | None = Field(None, ge=1, le=256, description="Batch size; unset = 'auto'.")
    learning_rate_multiplier: float | None = Field(None, gt=0, le=10, description="LR multiplier; unset = 'auto'.")
    poll_interval_s: float = Field(5.0, gt=0, description="First wait between status polls; doubles up to poll_max_interval_s.")
    poll_max_interval_s: float = Field(60.0, gt=0, description="Longest wait between status polls.")
    timeout_h: float = Field(24.0, gt=0, description="Give up (and cancel the job) after this many hours.")


class TrainingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["lora", "openai"] = Field("lora", description="'lora' (local/vLLM) or 'openai' (OpenAI fine-tuning job).")
    rank: int = Field(8, ge=1, le=256, description="LoRA rank r. vLLM refuses ranks above its --max-lora-rank (16 by default).")
    alpha: int = Field(16, ge=1, description="LoRA alpha; the update is scaled by alpha/r (2.0 with the defaults).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input; a little regularises small datasets.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Linear layers that get adapters. Attention projections only keeps adapters small and vLLM-friendly; "
        "add 'gate_proj', 'up_proj', 'down_proj' for more capacity.",
    )
    epochs: float = Field(2.0, gt=0, description="Passes over the training set; 2 is enough for a persona's style without memorising.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate; 1e-4-3e-4 is the usual LoRA range.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="Fraction of steps spent warming the LR up from 0.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay on the adapter weights.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    batch_size: int = Field(4, ge=1, description="Examples (or packed rows) per device per step.")
    gradient_accumulation: int = Field(1, ge=1, description="Steps whose gradients are summed before an update (effective batch = batch_size x this x GPUs).")
    max_length: int = Field(1024, ge=32, description="Longest training example in tokens; longer conversations are split by turns.")
    packing: bool = Field(False, description="Pack several examples per row, with attention kept within each example.")
    group_by_length: bool = Field(
        True, description="Batch examples of similar length together (less padding, faster); ignored when packing."
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="'auto' = bf16 on a GPU that supports it, else fp32 (the CPU path)."
    )
    gradient_checkpointing: Literal["auto", "on", "off"] = Field(
        "auto", description="Recompute activations in the backward pass to save memory; 'auto' = on a GPU, off on the CPU."
    )
    system_prompt: Literal["persona", "dataset"] = Field(
        "persona",
        description="'persona' trains every example with the persona's own system prompt (what serving sends); "
        "'dataset' keeps each example's system message as written.",
    )
    logging_steps: int = Field(5, ge=1, description="Record loss and tokens/s every this many optimizer steps.")
    eval_steps: int = Field(50, ge=1, description="Compute validation loss every this many steps (and at the end).")
    save_steps: int = Field(50, ge=1, description="Write a resumable checkpoint every this many steps.")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept on disk (older ones are deleted).")
    seed: int = Field(42, description="Seed for adapter initialisation, shuffling and dropout.")
    openai: OpenAITrainingSpec = Field(default_factory=OpenAITrainingSpec, description="OpenAI fine-tuning job options.")
