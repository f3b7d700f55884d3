"""`personabot model list|promote|rollback`: the model registry from the terminal.

Promotion and rollback switch the registry; a running bot follows within seconds (its model sync
polls the registry), with no restart. On vLLM the new adapter is loaded first, and the old one is
unloaded after a grace period, which this command waits for unless `--no-wait`.
"""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from

model_app = typer.Typer(help="List, promote and roll back a persona's fine-tuned versions.", no_args_is_help=True)


def _status(v) -> str:
    return f"{v.status} (tainted)" if v.tainted else v.status


def _row(v) -> dict:
    gate = v.metrics.get("eval") or {}
    return {"name": v.name, "persona": v.persona, "status": v.status, "tainted": v.tainted,
            "tainted_reason": v.tainted_reason, "status_reason": v.status_reason, "backend": v.backend,
            "base_model": v.base_model, "served_model": v.served_model, "adapter_path": v.adapter_path,
            "remote_model": v.remote_model, "dataset_version": v.dataset_version, "hyperparams": v.hyperparams,
            "val_loss": v.metrics.get("val_loss"), "gate": None if not gate else
            {"passed": gate.get("passed"), "reasons": gate.get("reasons"), "losses": gate.get("losses")},
            "created_at": v.created_at, "promoted_at": v.promoted_at}


@model_app.command("list")
def list_(
    ctx: typer.Context,
    persona: str = typer.Option(None, "--persona", "-p", help="Only this persona's versions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every version: status (candidate, active, retired, failed; tainted when trained on forgotten data), gate result, data."""
    from rich.table import Table

    from bot.store import open_db, registry

    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await registry.list_versions(db, persona)

    versions = run_async(go())
    if as_json:
        print_json({"versions": [_row(v) for v in versions]})
        return
    if not versions:
        console.print("No model versions yet." + (f" Train one with `personabot train --persona {persona}`." if persona else ""))
        return
    table = Table(title="Model versions")
    for col in ("name", "status", "gate", "val loss", "dataset", "served as", "note"):
        table.add_column(col)
    for v in versions:
        gate = v.metrics.get("eval")
        verdict = "" if not gate else ("passed" if gate.get("passed") else "rejected")
        loss = v.metrics.get("val_loss")
        style = "bold green" if v.status == "active" else ("red" if v.tainted or v.status == "failed" else None)
        table.add_row(v.name, _status(v), verdict, "" if loss is None else f"{loss:.4f}", v.dataset_version or "",
                      v.served_model, v.tainted_reason or v.status_reason or "", style=style)
    console.print(table)


def _wait_and_unload(settings, spec, result, grace: float, db_path) -> None:
    from bot.store import open_db
    from trainer.promote import unload_after_grace

    if not result.unload_pending:
        return
    err_console.print(f"Unloading {result.unload_pending} from vLLM in {grace:g}s, once replies still streaming from it "
                      "have finished (Ctrl-C leaves it loaded; unload it later with `model promote` or a vLLM restart).")

    async def go():
        async with open_db(db_path) as db:
            return await unload_after_grace(settings, spec, result.unload_pending, grace, db=db)

    try:
        if run_async(go()):
            console.print(f"Unloaded {result.unload_pending}.")
    except KeyboardInterrupt:
        err_console.print(f"{result.unload_pending} stays loaded on vLLM.")


GRACE_OPTION = typer.Option(120.0, "--grace", min=0, help="Seconds the old vLLM adapter stays loaded after the switch.")
NO_WAIT_OPTION = typer.Option(False, "--no-wait", help="Do not wait to unload the old vLLM adapter (it stays loaded).")


@model_app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to promote a version of."),
    version: str = typer.Option(None, "--version", "-v", help="Version name (tim-v3) or number; default: the newest candidate that passed the gate."),
    force: bool = typer.Option(False, "--force", help="Promote even if it has not passed the gate or is tainted."),
    grace: float = GRACE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a version the persona's active one; the running bot hot-swaps to it without a restart."""
    from trainer.promote import promote

    _switch(ctx, persona, lambda db, settings, spec: promote(db, settings, spec, version, force=force), grace, no_wait, as_json)


@model_app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to roll back."),
    to: str = typer.Option(None, "--to", help="Version to go back to; default: the one that served before (the spec's model if none)."),
    force: bool = typer.Option(False, "--force", help="Allow rolling back to a tainted version."),
    grace: float = GRACE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Go back to the previous version in one command; the running bot switches without a restart."""
    from trainer.promote import rollback

    _switch(ctx, persona, lambda db, settings, spec: rollback(db, settings, spec, to, force=force), grace, no_wait, as_json)


def _switch(ctx: typer.Context, persona: str, action, grace: float, no_wait: bool, as_json: bool) -> None:
    """Run a promotion or rollback, report it, then unload the old vLLM adapter after the grace period."""
    from bot.store import open_db
    from trainer.promote import PromotionError

    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await action(db, settings, spec)

    try:
        result = run_async(go())
    except PromotionError as exc:
        raise fail(str(exc))
    if as_json:
        print_json({"persona": result.persona, "active": result.version, "previous": result.previous,
                    "unload_pending": result.unload_pending})
    else:
        console.print(result.summary())
    if not no_wait:
        _wait_and_unload(settings, spec, result, grace, settings.core.db_path)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
