"""`personabot eval --persona NAME [--version V]`: run the evaluation gate and say why it passed or not.

Exit status 0 when the gate passes, 1 when it rejects, so scripts and CI can rely on it.
"""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, fail, load_persona_or_exit, print_json, run_async, settings_from


def eval_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to evaluate."),
    version: str = typer.Option(None, "--version", "-v", help="Version name (tim-v3) or number; default: the newest candidate."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Held-out loss of a version against the active version and the base model, plus the persona's behaviour probes (probes.toml)."""
    from rich.table import Table

    from bot.store import open_db, registry
    from trainer.evaluate.gate import evaluate_version
    from trainer.evaluate.probes import ProbeFileError
    from trainer.evaluate.runtime import backend_factory, loss_fn

    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            versions = await registry.list_versions(db, spec.name)
            if version is None:
                found = [v for v in versions if v.status == "candidate"] or [v for v in versions if v.status != "training"]
                target = found[-1] if found else None
            else:
                target = next((v for v in versions if v.name in (version, f"{spec.name}-v{version}")), None)
            if target is None:
                known = ", ".join(v.name for v in versions) or "none"
                raise fail(f"no version {'to evaluate' if version is None else repr(version)} for {spec.name} (known: {known})")
            return await evaluate_version(db, spec, target, data_dir=settings.core.data_dir,
                                          loss_fn=loss_fn(settings), backend_factory=backend_factory(settings))

    try:
        report = run_async(go())
    except ProbeFileError as exc:
        raise fail(str(exc))
    if as_json:
        print_json(report.to_dict())
    else:
        console.print(report.summary(), highlight=False)
        if report.probes:
            table = Table(title="Behaviour probes")
            for col in ("probe", "result", "reply"):
                table.add_column(col)
            for p in report.probes:
                verdict = "[green]pass[/]" if p.passed else "[red]fail[/]: " + "; ".join(p.failures)
                table.add_row(p.name, verdict, (p.reply[:120] + "…") if len(p.reply) > 120 else p.reply)
            console.print(table)
    if not report.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
