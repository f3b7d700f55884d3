"""`[training]` section of a persona spec: LoRA / fine-tuning hyperparameters (owned by the trainer)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field("lora", description="'lora' (local/vLLM) or 'openai' (OpenAI fine-tuning job).")
    rank: int = Field(8, ge=1, le=256, description="LoRA rank r. vLLM refuses ranks above its --max-lora-rank (16 by default).")
    alpha: int = Field(16, ge=1, description="LoRA alpha; the update is scaled by alpha/r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], description="Linear layers that get adapters."
    )
    epochs: float = Field(2.0, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=32, description="Longest training example in tokens; longer conversations are split by turns.")
    packing: bool = Field(False, description="Pack several examples per row, with attention kept within each example.")
