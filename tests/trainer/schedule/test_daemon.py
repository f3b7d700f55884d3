"""Scheduling guarantees: one run per persona (a lock a crash cannot leave held), misfire grace,
and a schedule whose state survives a restart."""
import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from bot.persona.schedule import ScheduleSpec
from bot.store.db import utcnow
from tests.conftest import REPO
from tests.trainer.schedule.conftest import FakeTrainer, Notices, approved_exchanges, stand_in_steps
from trainer.schedule import LockBusy, TrainerDaemon, persona_lock
from trainer.schedule.daemon import job_store_url
from trainer.schedule.lock import lock_path
from trainer.schedule.runs import get_run, list_runs, start_run


def test_lock_is_exclusive_and_released(settings):
    data = settings.core.data_dir
    with persona_lock(data, "tim"):
        with pytest.raises(LockBusy, match=rf"already in progress \(pid {os.getpid()} since"):
            with persona_lock(data, "tim"):
                pass
        with persona_lock(data, "eve"):   # other personas are independent
            pass
    with persona_lock(data, "tim"):
        pass


def test_a_crashed_holder_never_keeps_the_lock(settings):
    data = settings.core.data_dir
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from trainer.schedule.lock import persona_lock
        with persona_lock({str(data)!r}, "tim"):
            print("locked", flush=True)
            time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(LockBusy, match=f"pid {child.pid}"):
            with persona_lock(data, "tim"):
                pass
        child.send_signal(signal.SIGKILL)     # a crash: no clean-up code runs
        child.wait(10)
        with persona_lock(data, "tim"):
            assert lock_path(data, "tim").read_text().startswith(f"pid {os.getpid()}")
    finally:
        if child.poll() is None:
            child.kill()


async def test_busy_persona_is_not_run_twice_and_dead_runs_are_marked(db, settings, personas):
    daemon = TrainerDaemon(db, settings, personas, steps=stand_in_steps(settings, FakeTrainer(settings)), notifier=Notices())
    with persona_lock(settings.core.data_dir, "tim"):
        outcome = await daemon.run_now("tim", "force")
        assert outcome.status == "busy" and "already in progress" in outcome.reason
    # A run row left 'running' by a process that died is closed by the next run.
    stale = await start_run(db, "tim", "schedule", utcnow(), 0)
    await approved_exchanges(db, "u1", "Ana", [("What is a fraction?", "A part of a whole.")])
    assert (await daemon.run_now("tim", "force")).status == "promoted"
    assert (await get_run(db, stale)).status == "interrupted"


async def test_concurrent_runs_of_one_persona(db, settings, personas):
    trainer = FakeTrainer(settings)
    steps = stand_in_steps(settings, trainer)
    gate = asyncio.Event()
    real_train = steps.train

    async def slow(ctx, persona, dataset):
        await gate.wait()
        return await real_train(ctx, persona, dataset)

    steps.train = slow
    daemon = TrainerDaemon(db, settings, personas, steps=steps, notifier=Notices())
    await approved_exchanges(db, "u1", "Ana", [("What is a fraction?", "A part of a whole.")])
    first = asyncio.create_task(daemon.run_now("tim", "force"))
    await asyncio.sleep(0.3)
    second = await daemon.run_now("tim", "force")
    gate.set()
    assert second.status == "busy" and (await first).status == "promoted"


def enabled(personas, **changes):
    tim = personas["tim"]
    return {**personas, "tim": tim.model_copy(update={"schedule": tim.schedule.model_copy(update=changes)})}


def stored_job(settings):
    store = SQLAlchemyJobStore(url=job_store_url(settings.core.data_dir))
    store.start(None, "default")   # a bare store, as the next process would open it
    return store


def move_next_run(settings, when):
    """Pretend the trainer was down across a fire time: the stored next run time is in the past."""
    store = stored_job(settings)
    job = store.lookup_job("retrain:tim")
    job.next_run_time = when
    store.update_job(job)
    store.shutdown()


async def test_schedule_survives_restart_and_misfires_within_grace_still_run(db, settings, personas):
    specs = enabled(personas, misfire_grace_s=3600)
    steps = stand_in_steps(settings, FakeTrainer(settings))
    async with TrainerDaemon(db, settings, specs, steps=steps, notifier=Notices()) as daemon:
        first = daemon.next_runs()["tim"]
    # Restarted with the same spec: the stored job (and its next run time) is kept.
    async with TrainerDaemon(db, settings, specs, steps=steps, notifier=Notices()) as daemon:
        assert daemon.reconcile_jobs() == {"tim": "kept"} and daemon.next_runs()["tim"] == first

    # Down across a fire time 10 minutes ago, back within the hour's grace: the run happens once.
    move_next_run(settings, datetime.now(timezone.utc) - timedelta(minutes=10))
    await approved_exchanges(db, "u1", "Ana", [(f"Question {i}?", f"Answer {i}.") for i in range(4)])
    async with TrainerDaemon(db, settings, specs, steps=steps, notifier=Notices()) as daemon:
        for _ in range(500):
            if daemon.outcomes:
                break
            await asyncio.sleep(0.02)
        assert [o.status for o in daemon.outcomes] == ["promoted"]
        assert datetime.fromisoformat(daemon.next_runs()["tim"]) > datetime.now(timezone.utc)

    # Down for longer than the grace: the missed run is skipped, the schedule goes on.
    specs = enabled(personas, misfire_grace_s=60)
    move_next_run(settings, datetime.now(timezone.utc) - timedelta(minutes=10))
    before = len(await list_runs(db, "tim"))
    async with TrainerDaemon(db, settings, specs, steps=steps, notifier=Notices()) as daemon:
        await asyncio.sleep(0.3)
        assert daemon.outcomes == []
        assert datetime.fromisoformat(daemon.next_runs()["tim"]) > datetime.now(timezone.utc)
    assert len(await list_runs(db, "tim")) == before


async def test_reconcile_follows_the_specs(db, settings, personas):
    steps = stand_in_steps(settings, FakeTrainer(settings))
    async with TrainerDaemon(db, settings, personas, steps=steps) as daemon:
        assert daemon.next_runs().keys() == {"tim"}
    changed = enabled(personas, cron="30 2 * * *")
    async with TrainerDaemon(db, settings, changed, steps=steps) as daemon:
        assert daemon.reconcile_jobs() == {"tim": "kept"}   # start() already replaced it
        assert datetime.fromisoformat(daemon.next_runs()["tim"]).minute == 30
    off = enabled(personas, enabled=False)
    async with TrainerDaemon(db, settings, off, steps=steps) as daemon:
        assert daemon.next_runs() == {}


def test_schedule_spec_validates_cron():
    assert ScheduleSpec(cron="*/15 * * * 1-5").cron == "*/15 * * * 1-5"
    with pytest.raises(ValueError, match="5 crontab fields"):
        ScheduleSpec(cron="0 4 * *")
    with pytest.raises(ValueError, match="not a valid crontab expression"):
        ScheduleSpec(cron="61 4 * * *")
    with pytest.raises(ValueError, match="outside 0-7"):
        ScheduleSpec(cron="0 4 * * 9")
