"""`personabot train`: fine-tune a persona on a dataset version (local LoRA or an OpenAI job).

The run becomes a registry version (`tim-v3`, status 'candidate' when it succeeds) that the
evaluation gate can promote. Torch and training code are imported only when the command runs.
"""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from


def train(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to fine-tune (a folder under personas/)."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset version (default: the newest built one)."),
    backend: str = typer.Option(None, "--backend", "-b", help="local (LoRA) or openai (default: the persona's [training].method)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted identical run from its last checkpoint."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps (smoke runs)."),
    cancel: str = typer.Option(None, "--cancel", help="Cancel the version still training with this name (e.g. tim-v3) instead."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fine-tune PERSONA on a dataset version; the result is a 'candidate' model version."""
    settings = settings_from(ctx)
    spec = load_persona_or_exit(ctx, persona)
    if backend is not None and backend not in ("local", "openai"):
        raise fail(f"--backend must be 'local' or 'openai', got {backend!r}")

    from bot.store import open_db
    from trainer.finetune.runner import TrainingSetupError, cancel_training, dataset_folder, run_training

    if cancel is not None:
        async def do_cancel():
            async with open_db(settings.core.db_path) as db:
                return await cancel_training(db, settings, spec, cancel)

        try:
            version = run_async(do_cancel())
        except Exception as exc:  # setup and API errors are one line for the admin
            raise fail(str(exc))
        if as_json:
            print_json({"version": version.name, "status": version.status, "reason": version.status_reason})
        else:
            console.print(f"Cancelled {version.name}.")
        return

    try:
        folder = dataset_folder(settings.core.data_dir, spec.name, dataset)
    except TrainingSetupError as exc:
        raise fail(str(exc))

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=err_console, disable=as_json, transient=False)
    task = bar.add_task(f"{spec.name} {folder.name}", total=None, info="starting")
    last: dict = {}

    def progress(event: dict) -> None:
        phase = event.get("phase")
        if phase == "warning":
            err_console.print(f"[yellow]warning:[/] {event['message']}")
        elif phase == "start":
            bar.update(task, description=f"{event['version']} ({event['device']}, {event['precision']})")
        elif phase == "train":
            if "loss" in event:
                last["loss"] = event["loss"]
            if "val_loss" in event:
                last["val_loss"] = event["val_loss"]
            if event.get("tokens_per_s"):
                last["tok/s"] = event["tokens_per_s"]
            info = "  ".join(f"{k} {v:.3f}" if k != "tok/s" else f"{v:.0f} tok/s" for k, v in last.items())
            bar.update(task, completed=event.get("step", 0), total=event.get("max_steps"), info=info)
        elif phase in ("status", "event", "job", "upload"):
            bar.update(task, info=str(event.get("status") or event.get("message") or event.get("job_id") or "uploading"))

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await run_training(db, settings, spec, folder, backend, progress=progress, resume=resume, max_steps=max_steps)

    try:
        with bar:
            version = run_async(go())
    except KeyboardInterrupt:
        raise fail("interrupted; the last checkpoint is kept: run the same command again to resume", code=130)
    except TrainingSetupError as exc:
        raise fail(str(exc))
    except Exception as exc:
        from trainer.finetune.lora import TrainingInterrupted

        if isinstance(exc, TrainingInterrupted):
            raise fail(f"{exc}; run the same command again to resume", code=130)
        raise

    report = {"version": version.name, "status": version.status, "reason": version.status_reason,
              "backend": version.backend, "dataset": version.dataset_version, "adapter_path": version.adapter_path,
              "remote_model": version.remote_model,
              "metrics": {k: v for k, v in version.metrics.items() if k not in ("train_stats", "val_stats", "events")}}
    if as_json:
        print_json(report)
    elif version.status == "candidate":
        m = version.metrics
        lines = [f"[green]{version.name}[/] is a candidate ({version.backend}, dataset {version.dataset_version})."]
        if m.get("val_loss_base") is not None and m.get("val_loss_final") is not None:
            lines.append(f"held-out loss {m['val_loss_base']:.4f} -> {m['val_loss_final']:.4f}")
        if m.get("tokens_per_s"):
            lines.append(f"{m['tokens_per_s']:.0f} tokens/s over {m.get('global_step')} steps")
        lines.append(f"adapter: {version.adapter_path}" if version.adapter_path else f"model: {version.remote_model}")
        console.print("\n".join(lines))
    if version.status == "failed":
        raise fail(f"{version.name} failed: {version.status_reason}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
