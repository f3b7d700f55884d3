"""`[schedule]` section of a persona spec: when the scheduled trainer retrains (owned by the trainer).

A scheduled run (see `trainer/schedule/`) happens at each cron time, but only trains when at least
`min_new_examples` approved examples arrived since the last run that trained, or when the active
version is tainted (a member's data was forgotten). It then adds `[synthetic].per_run` synthetic
conversations, builds a dataset, trains, runs the evaluation gate and, when `auto_promote` is on
and the gate passes, hot-swaps the new version in.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Retrain this persona on a schedule.")
    cron: str = Field("0 4 * * 1", description="Crontab expression (minute hour day month weekday), UTC.")
    min_new_examples: int = Field(50, ge=0, description="Run only when this many new approved examples exist since the last run.")
    admin_channel_id: int | None = Field(None, description="Discord channel where results are posted.")
    misfire_grace_s: int = Field(
        6 * 3600, ge=1,
        description="A run missed while the trainer was down still happens if it restarts within this many seconds.")
    auto_promote: bool = Field(True, description="Promote a new version that passes the evaluation gate (else leave it a candidate).")

    @field_validator("cron")
    @classmethod
    def _crontab(cls, v: str) -> str:
        fields = v.split()
        if len(fields) != 5:
            raise ValueError("expected 5 crontab fields: minute hour day month weekday, e.g. '0 4 * * 1'")
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(v, timezone="UTC")
        except ImportError:  # pragma: no cover - APScheduler is a base dependency
            pass
        except ValueError as exc:
            raise ValueError(f"not a valid crontab expression: {exc}") from None
        return v
