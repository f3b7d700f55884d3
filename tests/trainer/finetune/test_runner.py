"""run_training (local): registry version, recorded metrics, adapter folder, failure and resume; the CLI."""
from __future__ import annotations

import json

import pytest

from bot.persona.spec import PersonaSpec
from bot.store.registry import list_versions
from tests.trainer.finetune.conftest import TIM_PROMPT, tutor_conversations, write_dataset
from trainer.finetune.heldout import evaluate_loss
from trainer.finetune.lora import TrainingInterrupted
from trainer.finetune.runner import dataset_folder, run_training

TRAINING = {"rank": 4, "alpha": 8, "learning_rate": 1e-2, "batch_size": 4, "max_length": 128, "logging_steps": 1,
            "eval_steps": 2, "save_steps": 100, "warmup_ratio": 0.0, "lr_scheduler": "constant",
            "target_modules": ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]}


def tim(model_dir, **training) -> PersonaSpec:
    return PersonaSpec(name="tim", display_name="TIM", system_prompt=TIM_PROMPT,
                       model={"backend": "vllm", "model": str(model_dir)}, training={**TRAINING, **training})


async def metric_rows(db, version_id):
    async with db.execute("SELECT step, loss, val_loss, tokens_per_s FROM training_metrics WHERE version_id = ? ORDER BY id",
                          (version_id,)) as cur:
        return [dict(r) for r in await cur.fetchall()]


async def test_local_run_creates_candidate_with_metrics(db, settings, tiny_model_dir):
    ds = write_dataset(settings.core.data_dir, "tim", "2026-05-01", tutor_conversations(12), tutor_conversations(4))
    events = []
    v = await run_training(db, settings, tim(tiny_model_dir), ds, progress=events.append, max_steps=4)
    assert v.status == "candidate", v.status_reason
    assert v.name == "tim-v1" and v.backend == "vllm" and v.dataset_version == "2026-05-01"
    adapter = settings.core.data_dir / "adapters" / "tim" / "tim-v1"
    assert v.adapter_path == str(adapter) and (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    assert v.hyperparams["rank"] == 4 and v.hyperparams["max_steps"] == 4
    assert v.metrics["val_loss_final"] < v.metrics["val_loss_base"]
    rows = await metric_rows(db, v.id)
    assert [r["step"] for r in rows if r["loss"] is not None] == [1, 2, 3, 4]
    assert rows[0]["step"] == 0 and rows[0]["val_loss"] == pytest.approx(v.metrics["val_loss_base"])
    assert all(r["tokens_per_s"] > 0 for r in rows if r["loss"] is not None and r["step"] > 1)
    assert {e["phase"] for e in events} >= {"start", "train", "done"}

    # The gate's held-out loss: the same number for the same adapter, base is worse.
    tuned = evaluate_loss(tiny_model_dir, adapter, ds / "val.jsonl", system_prompt=TIM_PROMPT, max_length=128)
    base = evaluate_loss(tiny_model_dir, None, ds / "val.jsonl", system_prompt=TIM_PROMPT, max_length=128)
    assert tuned == pytest.approx(v.metrics["val_loss_final"], rel=1e-4)
    assert base == pytest.approx(v.metrics["val_loss_base"], rel=1e-4) and tuned < base


async def test_empty_mask_marks_the_version_failed(db, settings, tiny_model_dir):
    convo = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey", "weight": 0}]}
    ds = write_dataset(settings.core.data_dir, "tim", "v1", [convo] * 3, [])
    v = await run_training(db, settings, tim(tiny_model_dir), ds, max_steps=2)
    assert v.status == "failed" and "MaskError" in v.status_reason and "mask is empty" in v.status_reason


async def test_interrupted_run_resumes_in_the_same_version(db, settings, tiny_model_dir):
    ds = write_dataset(settings.core.data_dir, "tim", "v1", tutor_conversations(12), [])
    with pytest.raises(TrainingInterrupted):
        await run_training(db, settings, tim(tiny_model_dir, save_steps=2), ds, max_steps=4, stop_at_step=3)
    [v] = await list_versions(db, "tim")
    assert v.status == "training" and "resume" in v.status_reason
    again = await run_training(db, settings, tim(tiny_model_dir, save_steps=2), ds, max_steps=4)
    assert again.name == v.name and again.status == "candidate"
    assert again.metrics["resumed_from"] == "checkpoint-2" and again.metrics["global_step"] == 4
    # Different hyperparameters are a different run: a new version.
    other = await run_training(db, settings, tim(tiny_model_dir, rank=2), ds, max_steps=1)
    assert other.name == "tim-v2"


def test_dataset_folder_picks_newest(settings):
    write_dataset(settings.core.data_dir, "tim", "a", tutor_conversations(1), [])
    import time

    time.sleep(0.01)
    newest = write_dataset(settings.core.data_dir, "tim", "b", tutor_conversations(1), [])
    assert dataset_folder(settings.core.data_dir, "tim", None) == newest
    with pytest.raises(Exception, match="not found"):
        dataset_folder(settings.core.data_dir, "tim", "zzz")


def test_cli_train_json(tmp_path, tiny_model_dir, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli.main import app

    personas = tmp_path / "personas" / "tim"
    personas.mkdir(parents=True)
    (personas / "persona.toml").write_text(
        f'display_name = "TIM"\nsystem_prompt = "{TIM_PROMPT}"\n[model]\nmodel = "{tiny_model_dir}"\n'
        '[training]\nrank = 4\nmax_length = 128\nlogging_steps = 1\nlearning_rate = 1e-2\n', encoding="utf-8")
    data = tmp_path / "data"
    write_dataset(data, "tim", "v1", tutor_conversations(8), tutor_conversations(2))
    monkeypatch.setenv("PERSONABOT_PERSONAS_DIR", str(tmp_path / "personas"))
    result = CliRunner().invoke(app, ["--data-dir", str(data), "train", "--persona", "tim", "--max-steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == "tim-v1" and report["status"] == "candidate" and report["metrics"]["global_step"] == 2
    missing = CliRunner().invoke(app, ["--data-dir", str(data), "train", "--persona", "tim", "--dataset", "nope"])
    assert missing.exit_code == 1 and "not found" in missing.output


async def test_cancelling_checkpoints_then_resumes(db, settings, tiny_model_dir):
    """Ctrl-C (task cancellation) saves a checkpoint after the current step; the next run resumes from it."""
    import asyncio

    ds = write_dataset(settings.core.data_dir, "tim", "v1", tutor_conversations(12), [])
    loop = asyncio.get_running_loop()
    holder = {}

    def progress(event):
        if event.get("phase") == "train" and event.get("step") == 2:
            loop.call_soon_threadsafe(holder["task"].cancel)

    holder["task"] = asyncio.create_task(run_training(db, settings, tim(tiny_model_dir, save_steps=100), ds,
                                                      progress=progress, max_steps=6))
    with pytest.raises(asyncio.CancelledError):
        await holder["task"]
    [v] = await list_versions(db, "tim")
    assert v.status == "training" and "resume" in v.status_reason
    again = await run_training(db, settings, tim(tiny_model_dir, save_steps=100), ds, max_steps=6)
    assert again.name == v.name and again.status == "candidate"
    assert again.metrics["resumed_from"] in ("checkpoint-2", "checkpoint-3") and again.metrics["global_step"] == 6
