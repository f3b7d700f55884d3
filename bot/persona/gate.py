"""`[gate]` section of a persona spec: how the evaluation gate judges substance, and who promotes.

The loss and probe thresholds live beside the probes (`probes.toml`); this section holds what is
about the persona's substance and its promotion:

    [gate]
    samples = 24                      # held-out contexts (validation set + probes) per evaluation
    judge = "openai:gpt-4o-mini"      # "openai:MODEL" | "vllm:MODEL" | "local" | "local:MODEL" | "none"
    min_win_rate = 0.5                # the candidate's pairwise win rate (ties count half) against the active version
    max_role_confusion_increase = 0.1 # role-confusion rate may exceed the active version's by at most this
    promote = "auto"                  # "auto" | "judge" | "review"
    review_pairs = 6                  # blind pairs shown to a human reviewer

`promote`: `auto` promotes a candidate that passes the gate (today's behaviour); `judge` also needs
a judge verdict (a gate that ran no judge does not promote); `review` never promotes by itself: a
passing candidate waits for a human (`/model review` in Discord, `personabot model review`).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

JUDGE_KINDS = ("openai", "vllm", "local")


class GateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(24, ge=1, le=1000, description="Held-out contexts the judge compares (validation set plus probes).")
    judge: str = Field(
        "none", description='Judge model: "openai:MODEL", "vllm:MODEL", "local" (the persona\'s base model on this '
                            'machine), "local:MODEL" (a local folder, .gguf or the embedded model), or "none".')
    min_win_rate: float = Field(0.5, ge=0.0, le=1.0, description="Pairwise win rate (ties count half) the candidate needs.")
    max_role_confusion_increase: float = Field(
        0.1, ge=0.0, le=1.0, description="How much higher than the active version's a candidate's role-confusion rate may be.")
    promote: Literal["auto", "judge", "review"] = Field(
        "auto", description="auto: promote when the gate passes; judge: only with a judge's pass; review: wait for a human.")
    review_pairs: int = Field(6, ge=1, le=20, description="Blind reply pairs a human reviewer votes on.")

    @field_validator("judge")
    @classmethod
    def _judge(cls, v: str) -> str:
        return check_judge_spec(v)


def check_judge_spec(v: str) -> str:
    """A judge spec as written in `[gate] judge` or `eval --judge`; raises ValueError naming the forms."""
    v = v.strip()
    if v in ("none", "local"):
        return v
    kind, _, model = v.partition(":")
    if kind in JUDGE_KINDS and model.strip():
        return f"{kind}:{model.strip()}"
    raise ValueError(f'expected "openai:MODEL", "vllm:MODEL", "local", "local:MODEL" or "none", got {v!r}')
