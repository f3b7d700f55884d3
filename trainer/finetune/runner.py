"""The common training interface: one call turns a dataset version into a registry candidate.

`run_training(db, settings, persona, dataset_dir, backend=...)`:
1. creates the registry version (`tim-v3`, status 'training') — or, when a run with the same
   persona, dataset, base model and hyperparameters was interrupted, picks that version up again;
2. trains (local LoRA in a worker thread, or an OpenAI job polled in the event loop), recording
   loss / val loss / tokens/s in `training_metrics` as it goes and reporting to `progress`;
3. writes the adapter to `<data_dir>/adapters/<persona>/<name>/` (local) or records the
   fine-tuned model id (OpenAI);
4. sets the version to 'candidate' with its metrics, or 'failed' with a one-line reason, and
   returns it. Interrupting (Ctrl-C / task cancellation) checkpoints, leaves the version in
   'training' with a note, and re-raises; the next identical call resumes.

Local runs live in `<data_dir>/runs/<persona>/<dataset>-<fingerprint>/` (checkpoints), a folder
every process of an `accelerate launch` computes alike, so only the main process touches the
database.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from pathlib import Path
from typing import Callable

import aiosqlite

from bot.persona.spec import PersonaSpec
from bot.settings import Settings
from bot.store.registry import ModelVersion, create_version, get_version, list_versions, record_metrics, update_version

log = logging.getLogger(__name__)

ProgressFn = Callable[[dict], None]


class TrainingSetupError(RuntimeError):
    """The run cannot start (no dataset, no base model, bad backend); nothing was created."""


def newest_dataset(data_dir: Path, persona: str) -> Path:
    """The newest dataset version folder of `persona` (by manifest time, else name)."""
    root = Path(data_dir) / "datasets" / persona
    versions = [p for p in root.iterdir() if (p / "train.jsonl").is_file()] if root.is_dir() else []
    if not versions:
        raise TrainingSetupError(f"no dataset for persona {persona!r} in {root}; build one with `personabot dataset build`")
    return max(versions, key=lambda p: ((p / "manifest.json").stat().st_mtime if (p / "manifest.json").exists() else 0, p.name))


def dataset_folder(data_dir: Path, persona: str, version: str | None) -> Path:
    if version is None:
        return newest_dataset(data_dir, persona)
    folder = Path(data_dir) / "datasets" / persona / version
    if not (folder / "train.jsonl").is_file():
        raise TrainingSetupError(f"dataset version {version!r} of {persona!r} not found ({folder / 'train.jsonl'} is missing)")
    return folder


def resolve_base_model(settings: Settings, persona: PersonaSpec) -> Path:
    """The persona's `[model].model` as a local Hugging Face folder (fetched/converted once)."""
    model = persona.model.model
    try:
        from bot.backends.local_models import resolve_model
    except ImportError:
        resolve_model = None
    if resolve_model is not None:
        return Path(resolve_model(model, settings.core.models_dir))
    for candidate in (Path(model).expanduser(), settings.core.models_dir / model):
        if (candidate / "config.json").is_file():
            return candidate
    raise TrainingSetupError(f"base model {model!r} is not a local Hugging Face folder (looked in {settings.core.models_dir})")


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


async def _resumable(db: aiosqlite.Connection, persona: str, key: str, value: str) -> ModelVersion | None:
    for v in reversed(await list_versions(db, persona)):
        if v.status == "training" and v.hyperparams.get(key) == value:
            return v
    return None


async def run_training(
    db: aiosqlite.Connection,
    settings: Settings,
    persona: PersonaSpec,
    dataset_dir: str | Path,
    backend: str | None = None,
    *,
    progress: ProgressFn | None = None,
    resume: bool = True,
    max_steps: int | None = None,
    base_model_dir: str | Path | None = None,
    openai_client=None,
    stop_at_step: int | None = None,
) -> ModelVersion:
    """Train `persona` on `dataset_dir` with `backend` ('local' | 'openai'; default from [training].method).

    `base_model_dir` overrides the resolved base model (tests, custom folders); `openai_client` an
    `AsyncOpenAI` to use (else one is built from settings and closed afterwards). `max_steps` caps
    optimizer steps for smoke runs. Returns the version: 'candidate', or 'failed' with a reason.
    """
    dataset_dir = Path(dataset_dir)
    if backend is None:
        backend = "openai" if persona.training.method == "openai" else "local"
    if backend not in ("local", "openai"):
        raise TrainingSetupError(f"backend must be 'local' or 'openai', got {backend!r}")
    if not (dataset_dir / "train.jsonl").is_file():
        raise TrainingSetupError(f"{dataset_dir / 'train.jsonl'} not found")
    if backend == "openai":
        return await _run_openai(db, settings, persona, dataset_dir, progress=progress, resume=resume, client=openai_client)
    return await _run_local(db, settings, persona, dataset_dir, progress=progress, resume=resume, max_steps=max_steps,
                            base_model_dir=base_model_dir, stop_at_step=stop_at_step)


# -- local LoRA ------------------------------------------------------------------------------------

async def _run_local(db, settings, persona, dataset_dir, *, progress, resume, max_steps, base_model_dir, stop_at_step):
    from trainer.finetune.config import resolve

    config = resolve(persona.training, device=settings.core.local_device, max_steps=max_steps)
    base = Path(base_model_dir) if base_model_dir is not None else resolve_base_model(settings, persona)
    val = dataset_dir / "val.jsonl"
    fingerprint = config.fingerprint(persona.name, dataset_dir.name, str(base.resolve()), _file_hash(dataset_dir / "train.jsonl"),
                                     persona.offline_system_prompt if config.system_prompt_policy == "persona" else "")
    run_dir = settings.core.data_dir / "runs" / persona.name / f"{dataset_dir.name}-{fingerprint}"
    main = _is_main_process()
    serve_backend = persona.model.backend if persona.model.backend in ("local", "vllm") else "local"

    version: ModelVersion | None = None
    if main:
        previous = await _resumable(db, persona.name, "run_dir", str(run_dir))
        if previous is not None and resume:
            version = previous
            log.info("resuming %s from %s", version.name, run_dir)
        else:
            if previous is not None:
                await update_version(db, previous.name, status="failed", reason="superseded by a fresh run (--no-resume)")
            hyperparams = {**config.as_dict(), "run_dir": str(run_dir), "fingerprint": fingerprint}
            version = await create_version(db, persona=persona.name, backend=serve_backend, base_model=persona.model.model,
                                           dataset_version=dataset_dir.name, hyperparams=hyperparams)
    adapter_dir = settings.core.adapters_dir / persona.name / (version.name if version else "_rank")
    if progress is not None and version is not None:
        progress({"phase": "start", "version": version.name, "backend": "local", "run_dir": str(run_dir),
                  "device": config.device, "precision": config.precision})

    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def on_log(event: dict) -> None:  # called in the training thread
        if version is not None:
            fut = asyncio.run_coroutine_threadsafe(record_metrics(
                db, version.id, step=event["step"], epoch=event.get("epoch"), loss=event.get("loss"),
                val_loss=event.get("val_loss"), tokens_per_s=event.get("tokens_per_s")), loop)
            fut.result(timeout=60)
        if progress is not None:
            progress({"phase": "train", **event})

    from trainer.finetune.lora import TrainingInterrupted, train_lora

    work = loop.run_in_executor(None, lambda: train_lora(
        base, dataset_dir / "train.jsonl", val if val.is_file() else None, run_dir, adapter_dir, config,
        system_prompt=persona.offline_system_prompt if config.system_prompt_policy == "persona" else None,
        resume=resume, on_log=on_log, stop_at_step=stop_at_step, stop_event=stop))
    try:
        result = await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()  # checkpoint at the end of the current step, then stop
        try:
            await work
        except BaseException:
            pass
        if version is not None:
            await update_version(db, version.name, status="training",
                                 reason="interrupted; run the same command again to resume from the last checkpoint")
        raise
    except TrainingInterrupted as exc:
        if version is not None:
            await update_version(db, version.name, status="training",
                                 reason=f"interrupted ({exc}); run the same command again to resume")
        raise
    except Exception as exc:
        log.exception("training %s failed", version.name if version else "?")
        if version is None:
            raise
        await update_version(db, version.name, status="failed", reason=f"{type(exc).__name__}: {exc}")
        return await get_version(db, version.name)

    if version is None:  # a non-main process of a multi-GPU run
        return await _resumable(db, persona.name, "run_dir", str(run_dir)) or ModelVersion(
            id=0, persona=persona.name, version=0, name="", backend=serve_backend, base_model=persona.model.model,
            adapter_path=None, remote_model=None, dataset_version=dataset_dir.name)
    metrics = {**result.metrics(), "val_loss": result.val_loss_final,
               "train_stats": result.train_stats, "val_stats": result.val_stats}
    await update_version(db, version.name, status="candidate", metrics=metrics, adapter_path=str(adapter_dir))
    if progress is not None:
        progress({"phase": "done", "version": version.name, **result.metrics()})
    return await get_version(db, version.name)


# -- OpenAI jobs -----------------------------------------------------------------------------------

def _openai_client(settings: Settings):
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=settings.openai.api_key or "missing", base_url=settings.openai.base_url,
                       timeout=settings.openai.timeout_s, max_retries=settings.openai.max_retries)


def tuner_for(settings: Settings, persona: PersonaSpec, client):
    from trainer.finetune.openai_jobs import OpenAIFineTuner

    spec = persona.training.openai
    return OpenAIFineTuner(client, poll_interval_s=spec.poll_interval_s, poll_max_interval_s=spec.poll_max_interval_s,
                           timeout_s=spec.timeout_h * 3600)


async def _run_openai(db, settings, persona, dataset_dir, *, progress, resume, client):
    from datetime import date

    from trainer.finetune.openai_jobs import NO_NEW_JOBS_FROM, FineTuneError, closure_notice

    notice = closure_notice()
    log.warning(notice)
    if progress is not None:
        progress({"phase": "warning", "message": notice})
    spec = persona.training.openai
    model = spec.model or persona.model.model
    hp = {"n_epochs": spec.n_epochs, "batch_size": spec.batch_size, "learning_rate_multiplier": spec.learning_rate_multiplier}
    key = f"{dataset_dir.name}:{_file_hash(dataset_dir / 'train.jsonl')}:{model}:{sorted(hp.items())}"
    own_client = client is None
    client = client or _openai_client(settings)
    tuner = tuner_for(settings, persona, client)

    version = await _resumable(db, persona.name, "openai_run", key) if resume else None
    try:
        if version is None:
            hyper = {"openai_run": key, "model": model, **hp}
            try:
                if date.today() >= NO_NEW_JOBS_FROM:
                    raise FineTuneError(notice)
                if progress is not None:
                    progress({"phase": "upload"})
                train_id = await tuner.upload(dataset_dir / "train.jsonl")
                val = dataset_dir / "val.jsonl"
                val_id = await tuner.upload(val) if val.is_file() and val.stat().st_size > 0 else None
                suffix = (spec.suffix or persona.name)[:64]
                job = await tuner.create_job(model=model, training_file=train_id, validation_file=val_id, suffix=suffix,
                                             hyperparameters=hp, seed=persona.training.seed)
            except FineTuneError as exc:
                failed = await create_version(db, persona=persona.name, backend="openai", base_model=model,
                                              dataset_version=dataset_dir.name, hyperparams=hyper, status="failed")
                await update_version(db, failed.name, status="failed", reason=str(exc))
                return await get_version(db, failed.name)
            hyper.update(job_id=job.id, training_file=train_id, validation_file=val_id, suffix=suffix)
            version = await create_version(db, persona=persona.name, backend="openai", base_model=model,
                                           dataset_version=dataset_dir.name, hyperparams=hyper)
        job_id = version.hyperparams["job_id"]
        if progress is not None:
            progress({"phase": "job", "version": version.name, "job_id": job_id})

        events: list[dict] = []
        checkpoints: list[dict] = []

        async def on_event(e: dict) -> None:
            events.append(e)
            data = e.get("data") or {}
            if e.get("type") == "metrics" and isinstance(data, dict) and "step" in data:
                await record_metrics(db, version.id, step=int(data["step"]), loss=data.get("train_loss"),
                                     val_loss=data.get("valid_loss"))
            if progress is not None:
                progress({"phase": "event", "message": e.get("message"), "level": e.get("level")})

        async def on_checkpoint(c: dict) -> None:
            checkpoints.append(c)
            m = c.get("metrics") or {}
            await record_metrics(db, version.id, step=int(c["step"]), loss=m.get("train_loss"),
                                 val_loss=m.get("full_valid_loss", m.get("valid_loss")))

        async def on_status(s: dict) -> None:
            if progress is not None:
                progress({"phase": "status", **s})

        try:
            result = await tuner.wait(job_id, on_event=on_event, on_checkpoint=on_checkpoint, on_status=on_status)
        except FineTuneError as exc:
            await update_version(db, version.name, status="failed", reason=str(exc),
                                 metrics={"job_id": job_id, "events": events[-50:], "checkpoints": checkpoints})
            return await get_version(db, version.name)
        except asyncio.CancelledError:
            await update_version(db, version.name, status="training",
                                 reason=f"stopped watching job {job_id} (it keeps running); run again to resume, "
                                        f"or `personabot train --cancel {version.name}`")
            raise
        last = (checkpoints[-1].get("metrics") or {}) if checkpoints else {}
        val_loss = last.get("full_valid_loss", last.get("valid_loss"))
        metrics = {"job_id": job_id, "trained_tokens": result.trained_tokens, "events": events[-50:],
                   "checkpoints": checkpoints, "notice": notice, "val_loss": val_loss}
        await update_version(db, version.name, status="candidate", metrics=metrics, remote_model=result.fine_tuned_model)
        if progress is not None:
            progress({"phase": "done", "version": version.name, "remote_model": result.fine_tuned_model})
        return await get_version(db, version.name)
    finally:
        if own_client:
            await client.close()


async def cancel_training(db: aiosqlite.Connection, settings: Settings, persona: PersonaSpec, name: str, *,
                          openai_client=None) -> ModelVersion:
    """Cancel a version still in 'training': its OpenAI job is cancelled; a local run is marked failed."""
    version = await get_version(db, name)
    if version is None or version.persona != persona.name:
        raise TrainingSetupError(f"no model version {name!r} of persona {persona.name!r}")
    if version.status != "training":
        raise TrainingSetupError(f"{name} is {version.status}, not training; nothing to cancel")
    job_id = version.hyperparams.get("job_id")
    if version.backend == "openai" and job_id:
        own = openai_client is None
        client = openai_client or _openai_client(settings)
        try:
            await tuner_for(settings, persona, client).cancel(job_id)
        finally:
            if own:
                await client.close()
    await update_version(db, name, status="failed", reason="cancelled by an admin")
    return await get_version(db, name)
