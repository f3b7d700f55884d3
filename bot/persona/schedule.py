"""`[schedule]` section of a persona spec: when the scheduled trainer retrains (owned by the trainer)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Retrain this persona on a schedule.")
    cron: str = Field("0 4 * * 1", description="Crontab expression (minute hour day month weekday), UTC.")
    min_new_examples: int = Field(50, ge=0, description="Run only when this many new approved examples exist since the last run.")
    admin_channel_id: int | None = Field(None, description="Discord channel where results are posted.")
