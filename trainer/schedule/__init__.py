"""The scheduled trainer: APScheduler fires each persona's cron; the pipeline checks for new approved
examples, adds synthetic conversations, builds, trains, gates and promotes, one run per persona at
a time. See `daemon.py` (scheduling), `pipeline.py` (one run), `lock.py` and `runs.py`."""
from trainer.schedule.daemon import TrainerDaemon
from trainer.schedule.lock import LockBusy, persona_lock
from trainer.schedule.pipeline import BuiltDataset, RunContext, RunOutcome, Steps, default_steps, run_pipeline

__all__ = ["TrainerDaemon", "LockBusy", "persona_lock", "BuiltDataset", "RunContext", "RunOutcome", "Steps",
           "default_steps", "run_pipeline"]
