"""`personabot eval --persona NAME [--version V] [--judge SPEC] [--samples N]`: run the evaluation gate.

Says why it passed or not: losses, probes, the judge's win rate with its three clearest wins and
losses side by side (with the judge's reasons), and the role-confusion rates. Exit status 0 when
the gate passes, 1 when it rejects, so scripts and CI can rely on it.
"""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from


def eval_cmd(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona to evaluate."),
    version: str = typer.Option(None, "--version", "-v", help="Version name (tim-v3) or number; default: the newest candidate."),
    judge: str = typer.Option(None, "--judge", help='Judge for this run: "openai:MODEL", "vllm:MODEL", "local", '
                              '"local:MODEL" or "none" (default: the persona\'s [gate] judge).'),
    samples: int = typer.Option(None, "--samples", min=1, help="Held-out contexts to compare (default: [gate] samples, 24)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Held-out loss against the active version and the base model, the behaviour probes (probes.toml), a pairwise
    judge against the active version's replies (rubric.md) and a role-confusion check."""
    from rich.table import Table

    from bot.persona.gate import check_judge_spec
    from bot.store import open_db, registry
    from trainer.evaluate.gate import evaluate_version
    from trainer.evaluate.probes import ProbeFileError
    from trainer.evaluate.runtime import backend_factory, judge_factory, loss_fn, role_check

    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)
    if judge is not None:
        try:
            judge = check_judge_spec(judge)
        except ValueError as exc:
            raise fail(f"--judge: {exc}")

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
                                          loss_fn=loss_fn(settings), backend_factory=backend_factory(settings),
                                          judge_factory=judge_factory(settings), role_check=role_check(settings),
                                          judge=judge, samples=samples, progress=lambda text: err_console.print(f"… {text}"))

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
        if report.judge is not None:
            for outcome, title in (("wins", "Clearest wins"), ("losses", "Clearest losses")):
                examples = report.judge["examples"][outcome]
                if not examples:
                    continue
                table = Table(title=f"{title} of {report.candidate} against {report.judge['baseline']}")
                for col in ("context", "member said", report.candidate, "baseline", "judge's reasons"):
                    table.add_column(col, overflow="fold")
                for e in examples:
                    table.add_row(e["context"], _short(e["last_message"]), _short(e["candidate"]), _short(e["baseline"]),
                                  _short(" / ".join(e["reasons"])))
                console.print(table)
    if not report.passed:
        raise typer.Exit(1)


def _short(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[:n] + "…"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
