"""Stopping the trainer (SIGTERM): a run in progress checkpoints, is recorded `interrupted` and
counted; `personabot trainer` serves /healthz and /metrics and exits 0 on SIGTERM."""
import asyncio
import json
import os
import signal
import socket
import sys
import time

import aiohttp
import pytest
from prometheus_client import generate_latest

from bot.observability.metrics import TrainerMetrics
from tests.conftest import REPO
from tests.trainer.schedule.conftest import FakeTrainer, Notices, approved_exchanges, stand_in_steps
from trainer.schedule import TrainerDaemon
from trainer.schedule.runs import list_runs


async def test_stopping_the_daemon_lets_a_training_run_checkpoint(db, settings, personas):
    trainer = FakeTrainer(settings)
    training = asyncio.Event()
    checkpointed = []

    async def slow_train(ctx, persona, dataset):
        training.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)          # the real runner finishes its step and saves a checkpoint
            checkpointed.append(persona.name)
            raise
        return await trainer(ctx, persona, dataset)

    steps = stand_in_steps(settings, trainer)
    steps.train = slow_train
    metrics = TrainerMetrics()
    daemon = TrainerDaemon(db, settings, personas, steps=steps, notifier=Notices(), metrics=metrics)
    await approved_exchanges(db, "u1", "Ana", [("what is 2+2?", "4: two and two make four.")])
    await daemon.start()
    run = asyncio.create_task(daemon.run_now("tim", "force"))
    await asyncio.wait_for(training.wait(), 30)
    await asyncio.wait_for(daemon.stop(), 5)
    assert run.cancelled() and checkpointed == ["tim"], "stop() waited for the checkpoint"
    [latest] = (await list_runs(db, limit=1))
    assert latest.status == "interrupted" and "resumes from the last checkpoint" in latest.reason
    assert 'personabot_training_runs_total{outcome="interrupted",persona="tim"} 1.0' in generate_latest(metrics.registry).decode()


async def test_finished_runs_are_counted_by_outcome(db, settings, personas):
    metrics = TrainerMetrics()
    daemon = TrainerDaemon(db, settings, personas, steps=stand_in_steps(settings, FakeTrainer(settings)),
                           notifier=Notices(), metrics=metrics)
    await daemon.run_now("tim", "schedule")   # no new examples: skipped
    text = generate_latest(metrics.registry).decode()
    assert 'personabot_training_runs_total{outcome="skipped",persona="tim"} 1.0' in text


@pytest.mark.parametrize("scheduled", [True, False], ids=["scheduled", "idle"])
async def test_trainer_process_serves_health_and_metrics_and_exits_0_on_sigterm(tmp_path, scheduled):
    folder = tmp_path / "personas" / "sage"
    folder.mkdir(parents=True)
    (folder / "persona.toml").write_text('display_name = "Sage"\nsystem_prompt = "You are Sage."\n'
                                         f'[schedule]\nenabled = {str(scheduled).lower()}\ncron = "0 4 1 1 *"\n', encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
           "PERSONABOT_DATA_DIR": str(tmp_path / "data"), "PERSONABOT_PERSONAS_DIR": str(tmp_path / "personas"),
           "PERSONABOT_METRICS_PORT": str(port), "PERSONABOT_METRICS_HOST": "127.0.0.1", "PERSONABOT_LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli.main", "trainer", "--keep-running", env=env, cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while True:
                assert proc.returncode is None and time.monotonic() < deadline
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                        assert r.status == 200
                        assert json.loads(await r.text()) == {"status": "ok", "checks": {"scheduler": "ok", "database": "ok"}}
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert "# TYPE personabot_training_runs_total counter" in await r.text()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        err = (await proc.stderr.read()).decode()
        assert code == 0, err[-2000:]
        entries = [json.loads(line) for line in err.splitlines() if line.strip()]   # JSON lines only
        assert entries[-1]["message"] == "trainer stopped"
        if scheduled:
            assert any(e["message"].startswith("sage: next run") for e in entries)
        else:
            assert any("no persona has [schedule] enabled" in e["message"] for e in entries)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
