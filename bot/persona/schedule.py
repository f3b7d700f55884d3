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
            cron_trigger(v)
        except ImportError:  # pragma: no cover - APScheduler is a base dependency
            pass
        except ValueError as exc:
            raise ValueError(f"not a valid crontab expression: {exc}") from None
        return v


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays(field: str) -> str:
    """Crontab's weekday field (0 or 7 = Sunday, names allowed) as APScheduler day names.

    APScheduler's own cron numbers weekdays from Monday = 0, so "0 4 * * 1" passed straight through
    would run on Tuesdays. Expanding to explicit names keeps crontab's meaning.
    """
    if field == "*":
        return "*"

    def number(token: str) -> int:
        token = token.lower()
        if token[:3] in _DAY_NAMES:
            return _DAY_NAMES.index(token[:3])
        n = int(token)
        if not 0 <= n <= 7:
            raise ValueError(f"weekday {n} is outside 0-7")
        return n % 7

    days: set[int] = set()
    for part in field.split(","):
        rng, _, step = part.partition("/")
        stride = int(step) if step else 1
        if stride < 1:
            raise ValueError(f"bad step in {part!r}")
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, b = rng.split("-", 1)
            # A range may end at 7 ("5-7": Friday to Sunday), so its end is not folded to 0 yet.
            lo, hi = number(a), int(b) if b.isdigit() else number(b)
        else:
            lo = number(rng)
            hi = 6 if step else lo
        if hi < lo:
            raise ValueError(f"empty weekday range {part!r}")
        days.update(d % 7 for d in range(lo, hi + 1, stride))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expression: str):
    """An APScheduler CronTrigger (UTC) for a crontab expression, with crontab's weekday numbering."""
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, weekday = expression.split()
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_weekdays(weekday),
                       timezone="UTC")
