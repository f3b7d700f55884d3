"""The scheduler: APScheduler fires each persona's `[schedule].cron`, the pipeline does the rest.

Contract of `TrainerDaemon`:

- One job per persona with `[schedule] enabled = true`, id `retrain:<persona>`, a UTC cron trigger,
  `coalesce=True` (several missed fire times make one run), `max_instances=1`, and the persona's
  `misfire_grace_s`.
- Jobs live in a persistent SQLAlchemy job store, `<data_dir>/scheduler.db`, so the schedule's
  state survives a restart: a fire time missed while the trainer was down still runs when it
  restarts within the grace period, and is skipped (logged) after it. On start the jobs are
  reconciled with the persona specs: a changed cron or grace replaces the job, an unchanged one
  keeps its stored next run time, a persona no longer enabled loses its job.
- Due jobs go to `_PipelineExecutor`, which runs `run_pipeline` as a task on the daemon's event
  loop. The stored job refers only to the module-level `scheduled_job` and the persona's name,
  so nothing unpicklable (connections, callbacks) is ever written to the store; the executor hands
  the running daemon to it.
- `run_now(name, trigger)` runs one persona's pipeline immediately (`--force`, `--once`), under the
  same per-persona lock, so it never overlaps a scheduled run of that persona.
- `stop()` cancels the runs in progress and waits for them: training checkpoints at the end of its
  current step on cancellation (`trainer.finetune.runner`), and the run is recorded `interrupted`.
  With `metrics` (`bot.observability.metrics.TrainerMetrics`) every run's outcome is counted.
- It runs inside `personabot trainer`, or inside `personabot run` (then `notifier` posts to the
  admin channel directly and `on_switched` tells the bot's `ModelSync` to follow at once).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timezone
from pathlib import Path
from typing import Awaitable, Callable, Mapping

import aiosqlite
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.persona.schedule import cron_trigger
from bot.persona.spec import PersonaSpec
from bot.settings import Settings
from trainer.schedule.pipeline import Notifier, RunContext, RunOutcome, Steps, log_notifier, run_pipeline

log = logging.getLogger(__name__)

JOB_PREFIX = "retrain:"


def job_store_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'scheduler.db'}"


async def scheduled_job(persona: str, *, daemon: "TrainerDaemon | None" = None) -> RunOutcome:
    """What a stored job runs: the pipeline of `persona`, in the daemon that fired it (the executor
    passes `daemon`; the stored job itself holds only the persona's name)."""
    if daemon is None:
        raise RuntimeError("scheduled_job runs inside TrainerDaemon, which passes itself as `daemon`")
    return await daemon.run_now(persona, "schedule")


class _PipelineExecutor(BaseExecutor):
    """Runs due jobs as tasks on the daemon's loop, passing the daemon to the job function."""

    def __init__(self, daemon: "TrainerDaemon", loop: asyncio.AbstractEventLoop):
        super().__init__()
        self._daemon = daemon
        self._loop = loop
        self._tasks: set[asyncio.Task] = set()

    def _do_submit_job(self, job, run_times):
        task = self._loop.create_task(job.func(*job.args, daemon=self._daemon, **job.kwargs))
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                self._run_job_error(job.id, asyncio.CancelledError(), None)
                return
            exc = t.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_times[-1], t.result())])

        task.add_done_callback(done)

    def shutdown(self, wait=True):
        for task in list(self._tasks):
            task.cancel()


class TrainerDaemon:
    def __init__(self, db: aiosqlite.Connection, settings: Settings, personas: Mapping[str, PersonaSpec], *,
                 steps: Steps | None = None, notifier: Notifier | None = None,
                 on_switched: Callable[[PersonaSpec, object], Awaitable[None]] | None = None,
                 store_url: str | None = None, metrics=None):
        self.db = db
        self.metrics = metrics
        self._running: set[asyncio.Task] = set()
        self.settings = settings
        self.personas = dict(personas)
        self.steps = steps
        self._ctx = RunContext(db, settings, notifier or log_notifier, on_switched, self._background)
        self._store_url = store_url or job_store_url(settings.core.data_dir)
        self._scheduler: AsyncIOScheduler | None = None
        self._background_tasks: set[asyncio.Task] = set()
        self.outcomes: list[RunOutcome] = []

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        Path(self.settings.core.data_dir).mkdir(parents=True, exist_ok=True)
        scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self._store_url)},
            executors={"default": _PipelineExecutor(self, loop)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=timezone.utc, event_loop=loop,
        )
        scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self._scheduler = scheduler
        # Reconcile first, paused, so a due job is judged against the spec's current grace.
        scheduler.start(paused=True)
        self.reconcile_jobs()
        scheduler.resume()

    async def stop(self) -> None:
        if self._scheduler is not None:
            # A wake-up already queued on the loop would still process jobs after shutdown (and
            # advance their stored next run time); paused, it returns at once. Let it drain first.
            self._scheduler.pause()
            await asyncio.sleep(0)
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        # Runs in progress: cancelled, and waited for while they checkpoint and record themselves.
        running = [t for t in self._running if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for task in list(self._background_tasks):
            task.cancel()
        await asyncio.gather(*self._background_tasks, return_exceptions=True)

    async def __aenter__(self) -> "TrainerDaemon":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- jobs -----------------------------------------------------------------------------------

    def reconcile_jobs(self) -> dict[str, str]:
        """Make the stored jobs match the persona specs. Returns persona → 'kept' | 'added' | 'replaced' | 'removed'."""
        scheduler = self._require()
        changes: dict[str, str] = {}
        wanted = {name: p for name, p in self.personas.items() if p.schedule.enabled}
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id[len(JOB_PREFIX):] not in wanted:
                job.remove()
                changes[job.id[len(JOB_PREFIX):]] = "removed"
        for name, persona in wanted.items():
            trigger = cron_trigger(persona.schedule.cron)
            job = scheduler.get_job(JOB_PREFIX + name)
            if job is not None and str(job.trigger) == str(trigger) and job.misfire_grace_time == persona.schedule.misfire_grace_s:
                changes[name] = "kept"   # keeps its stored next run time: a missed one still runs
                continue
            scheduler.add_job(f"{__name__}:scheduled_job", trigger, args=(name,), id=JOB_PREFIX + name,
                              name=f"retrain {name}", replace_existing=True,
                              misfire_grace_time=persona.schedule.misfire_grace_s)
            changes[name] = "replaced" if job is not None else "added"
        for name, change in changes.items():
            log.info("schedule for %s: %s", name, change)
        return changes

    def next_runs(self) -> dict[str, str | None]:
        """persona → next scheduled run (ISO, UTC), for status displays."""
        return {job.id[len(JOB_PREFIX):]: job.next_run_time.isoformat() if job.next_run_time else None
                for job in self._require().get_jobs() if job.id.startswith(JOB_PREFIX)}

    # -- running --------------------------------------------------------------------------------

    async def run_now(self, name: str, trigger: str = "force") -> RunOutcome:
        """Run one persona's pipeline now (`schedule` respects min_new_examples; `force` does not)."""
        persona = self.personas.get(name)
        if persona is None:
            raise KeyError(f"unknown persona {name!r}")
        task = asyncio.current_task()
        self._running.add(task)
        try:
            outcome = await run_pipeline(self._ctx, persona, trigger, steps=self.steps)
        except asyncio.CancelledError:
            if self.metrics is not None:
                self.metrics.training_run(name, "interrupted")
            raise
        finally:
            self._running.discard(task)
        if self.metrics is not None:
            self.metrics.training_run(name, outcome.status)
        self.outcomes.append(outcome)
        return outcome

    async def run_once(self) -> list[RunOutcome]:
        """Every enabled persona, as if its cron fired now (for `personabot trainer --once`)."""
        return [await self.run_now(name, "schedule") for name, p in self.personas.items() if p.schedule.enabled]

    async def wait_idle(self) -> None:
        """Wait for background work (delayed adapter unloads) to finish."""
        while self._background_tasks:
            await asyncio.gather(*list(self._background_tasks), return_exceptions=True)

    def _background(self, awaitable) -> None:
        task = asyncio.ensure_future(awaitable)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    def _missed(self, event) -> None:
        log.warning("scheduled run %s at %s was missed (the trainer was down longer than the misfire grace); "
                    "the next one follows the cron", event.job_id, event.scheduled_run_time)

    def _require(self) -> AsyncIOScheduler:
        if self._scheduler is None:
            raise RuntimeError("the trainer daemon is not started")
        return self._scheduler
