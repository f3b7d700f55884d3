"""OpenAI fine-tuning jobs against a loopback fake of the documented API (real `openai` SDK)."""
from __future__ import annotations

from datetime import date

import pytest

from bot.persona.spec import PersonaSpec
from bot.store.registry import list_versions
from tests.support.openai_finetune_routes import FineTuningFake
from tests.support.openai_server import TEST_API_KEY, FakeOpenAIServer
from tests.trainer.finetune.conftest import TIM_PROMPT, tutor_conversations, write_dataset
from trainer.finetune.openai_jobs import (
    FineTuneJobCancelled, OpenAIFineTuner, closure_notice,
)
from trainer.finetune.runner import cancel_training, run_training

MODEL = "gpt-4.1-mini-2025-04-14"


@pytest.fixture
async def fake():
    ft = FineTuningFake(models=[MODEL])
    server = FakeOpenAIServer(api_key=TEST_API_KEY)
    ft.install(server)
    async with server:
        ft.server = server
        yield ft


@pytest.fixture
async def client(fake):
    from openai import AsyncOpenAI

    c = AsyncOpenAI(api_key=TEST_API_KEY, base_url=fake.server.base_url, max_retries=0, timeout=5)
    yield c
    await c.close()


def persona(**training) -> PersonaSpec:
    return PersonaSpec(name="tim", display_name="TIM", system_prompt=TIM_PROMPT,
                       model={"backend": "openai", "model": MODEL},
                       training={"method": "openai", "openai": {"poll_interval_s": 0.01, "poll_max_interval_s": 0.02,
                                                                "n_epochs": 3, **training}})


@pytest.fixture
def dataset(settings):
    return write_dataset(settings.core.data_dir, "tim", "v1", tutor_conversations(6), tutor_conversations(2))


async def test_job_succeeds_and_becomes_candidate(fake, client, db, settings, dataset):
    events = []
    version = await run_training(db, settings, persona(suffix="tim-test"), dataset, progress=events.append, openai_client=client)
    assert version.status == "candidate", version.status_reason
    assert version.backend == "openai" and version.remote_model == f"ft:{MODEL}:personabot:tim-test:abc123"
    assert version.served_model == version.remote_model
    # Uploads: both files, byte for byte, purpose fine-tune.
    assert sorted(f["filename"] for f in fake.files.values()) == ["train.jsonl", "val.jsonl"]
    assert (dataset / "train.jsonl").read_bytes() in fake.file_bytes.values()
    [job] = fake.jobs.values()
    assert job.body["suffix"] == "tim-test" and job.body["validation_file"]
    assert job.body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    # Events and checkpoints recorded; checkpoint metrics land in training_metrics.
    assert any("succeeded" in e["message"] for e in version.metrics["events"])
    assert [c["step"] for c in version.metrics["checkpoints"]] == [5, 10]
    assert version.metrics["val_loss"] == 1.2  # the evaluation gate reads this for OpenAI versions
    async with db.execute("SELECT step, loss, val_loss FROM training_metrics WHERE version_id = ? ORDER BY step, id",
                          (version.id,)) as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    assert (10, 1.1, 1.2) in rows and (5, 1.5, 1.6) in rows
    assert any(e.get("phase") == "warning" and "wound down" in e["message"] for e in events)


async def test_failed_job_maps_to_a_clear_reason(fake, client, db, settings, dataset):
    fake.script(["validating_files", "failed"],
                error={"code": "invalid_training_file", "message": "Line 3 has no assistant message.", "param": "training_file"})
    version = await run_training(db, settings, persona(), dataset, openai_client=client)
    assert version.status == "failed"
    assert "Line 3 has no assistant message" in version.status_reason
    assert "invalid_training_file" in version.status_reason and "dataset validate" in version.status_reason


async def test_unknown_model_and_bad_key_fail_before_any_job(fake, client, db, settings, dataset):
    version = await run_training(db, settings, persona(model="davinci-002"), dataset, openai_client=client)
    assert version.status == "failed" and "not available for fine-tuning" in version.status_reason
    assert not fake.jobs

    from openai import AsyncOpenAI

    async with AsyncOpenAI(api_key="wrong", base_url=fake.server.base_url, max_retries=0) as bad:
        version = await run_training(db, settings, persona(), dataset, openai_client=bad)
    assert version.status == "failed" and "API key" in version.status_reason


async def test_permission_denied_mentions_wind_down(fake, client, db, settings, dataset):
    fake.server.fail(403, path="/v1/fine_tuning/jobs", body={"error": {"message": "Fine-tuning is not available for your organization."}})
    version = await run_training(db, settings, persona(), dataset, openai_client=client)
    assert version.status == "failed"
    assert "not available for your organization" in version.status_reason and "May 2026" in version.status_reason


async def test_polling_backs_off_and_survives_transient_errors(fake, client):
    fake.script(["queued"] * 5 + ["running", "succeeded"], checkpoints=[])
    slept = []

    async def sleep(s):
        slept.append(s)

    tuner = OpenAIFineTuner(client, poll_interval_s=1, poll_max_interval_s=4, sleep=sleep)
    job = await tuner.create_job(model=MODEL, training_file=await _upload_small(tuner, fake), validation_file=None, suffix=None)
    fake.server.fail(500, path=f"/v1/fine_tuning/jobs/{job.id}")
    result = await tuner.wait(job.id)
    assert result.status == "succeeded" and result.fine_tuned_model
    # error → wait 1; first status → back to 1; unchanged polls double up to the cap; a change resets
    assert slept == [1, 1, 2, 4, 4, 1]


async def _upload_small(tuner, fake):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "train.jsonl"
        p.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]}\n')
        return await tuner.upload(p)


async def test_cancel_a_running_job(fake, client, db, settings, dataset):
    fake.script(["validating_files", "queued", "running"])  # never finishes on its own
    tuner = OpenAIFineTuner(client, poll_interval_s=0.01, poll_max_interval_s=0.01)
    job = await tuner.create_job(model=MODEL, training_file=await _upload_small(tuner, fake), validation_file=None, suffix="x")
    await tuner.cancel(job.id)
    with pytest.raises(FineTuneJobCancelled, match="cancelled"):
        await tuner.wait(job.id)


async def test_interrupted_watch_resumes_then_cancel_command(fake, client, db, settings, dataset):
    import asyncio

    fake.script(["validating_files", "queued"] + ["running"] * 1000)
    task = asyncio.create_task(run_training(db, settings, persona(), dataset, openai_client=client))
    while fake.polls < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [v] = await list_versions(db, "tim")
    assert v.status == "training" and "keeps running" in v.status_reason
    # Running the same command again watches the same job instead of creating another.
    task = asyncio.create_task(run_training(db, settings, persona(), dataset, openai_client=client))
    polls = fake.polls
    while fake.polls < polls + 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(fake.jobs) == 1
    cancelled = await cancel_training(db, settings, persona(), v.name, openai_client=client)
    assert cancelled.status == "failed" and "cancelled" in cancelled.status_reason
    assert next(iter(fake.jobs.values())).status == "cancelled"


def test_closure_notice_dates():
    assert "wound down" in closure_notice(date(2026, 6, 1))
    assert "stopped accepting" in closure_notice(date(2027, 1, 6))
