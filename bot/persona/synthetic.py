"""`[synthetic]` section of a persona spec: synthetic conversation generation (owned by the trainer)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SyntheticSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: str = Field("topics.toml", description="Topic list file in the persona folder.")
    templates: str = Field("templates", description="Folder of generation prompt templates in the persona folder.")
    profiles: str = Field("profiles.toml", description="User profiles file in the persona folder.")
    min_turns: int = Field(4, ge=2, description="Conversations with fewer turns are dropped.")
    per_run: int = Field(0, ge=0, description="New synthetic conversations added by each scheduled training run.")
