"""`personabot synth`: generate clean synthetic conversations for a persona from its topic lists.

Thin layer over `trainer.synth`: builds the backend, opens the database, renders progress and the
report. Heavy imports happen inside the command so `personabot --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from

def synth(
    ctx: typer.Context,
    persona: str = typer.Option(..., "--persona", "-p", help="Persona folder name (e.g. tim). Its \\[synthetic] section and data files drive the run."),
    count: int = typer.Option(..., "--count", "-n", min=1, help="Conversations to plan. Items already done for this seed are skipped, so a larger count on a rerun only adds new ones."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Writer backend: openai, vllm or local. Default: the persona's \\[model] backend."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Writer model (OpenAI model id, vLLM model, or local model). Default: the persona's model when --backend is the persona's own."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Base URL of an OpenAI-compatible server (overrides the OPENAI_/VLLM_ settings)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Plan and sampling seed. The same seed and files give the same plan; a new seed gives new conversations."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", min=1, help="Generations in flight at once (default: the persona's synthetic.concurrency)."),
    max_retries: Optional[int] = typer.Option(None, "--max-retries", min=0, help="Retries of a failed request, with exponential backoff (default: synthetic.max_retries)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, max=2.0, help="Writer sampling temperature (default: synthetic.temperature)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=16, help="Most tokens per generated transcript (default: synthetic.max_tokens)."),
    tags: Optional[str] = typer.Option(None, "--tags", help="Only plan topics with these tags, comma-separated: general, child, adult, adversarial."),
    price_in: float = typer.Option(0.0, "--price-in", min=0.0, help="USD per million prompt tokens, for the running cost estimate."),
    price_out: float = typer.Option(0.0, "--price-out", min=0.0, help="USD per million completion tokens, for the running cost estimate."),
    export: Optional[Path] = typer.Option(None, "--export", help="Also write this run's kept conversations (including those kept by earlier runs of the same plan) as OpenAI chat JSONL."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and the first rendered prompt; generate nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Generate synthetic conversations for a persona and store them as a synthetic source.

    Topics, user profiles and prompt templates come from the persona's folder (\\[synthetic] in persona.toml). Each transcript is parsed and cleaned: labels normalised, same-speaker turns merged, the trailing user turn trimmed; refusals, too-short, leaked-label, repetitive and near-duplicate conversations are dropped and counted by reason.

    Kept conversations are stored with their provenance (template hash, topic, profile, model, sampling, seed) and `personabot dataset build` picks them up. Interrupt at any time: the same command continues where it stopped.
    """
    from trainer.synth import CatalogError, RunOptions, WriterError, build_writer, load_catalog, other_persona_names

    settings = settings_from(ctx)
    spec = load_persona_or_exit(ctx, persona)
    try:
        catalog = load_catalog(spec)
    except CatalogError as exc:
        raise fail(f"persona {persona!r} has unusable synthetic-data files:\n{exc}")
    tag_filter = tuple(t.strip() for t in tags.split(",") if t.strip()) if tags else ()
    unknown = [t for t in tag_filter if t not in ("general", "child", "adult", "adversarial")]
    if unknown:
        raise fail(f"--tags: unknown tag(s) {', '.join(unknown)}; expected general, child, adult, adversarial")

    others = other_persona_names(settings, spec)
    options = RunOptions(
        count=count, seed=seed, concurrency=concurrency, max_retries=max_retries, temperature=temperature,
        max_tokens=max_tokens, tags=tag_filter, other_personas=tuple(others), price_in_per_mtok=price_in,
        price_out_per_mtok=price_out,
    )
    if dry_run:
        try:
            _dry_run(spec, catalog, options, as_json)
        except CatalogError as exc:
            raise fail(str(exc))
        return

    try:
        writer = build_writer(settings, spec, backend, model, base_url)
    except WriterError as exc:
        raise fail(str(exc))
    try:
        report, exported, aborted = run_async(_run(settings, writer, spec, catalog, options, export, as_json))
    except KeyboardInterrupt:
        raise fail("interrupted. What finished is saved; run the same command again to continue.", 130)
    if as_json:
        data = report.as_dict()
        data["exported"] = exported
        print_json(data)
    else:
        _print_report(report, exported, export)
    if aborted:
        raise fail(f"{aborted}\nWhat finished is saved; run the same command again to continue.")


async def _run(settings, writer, spec, catalog, options, export, as_json):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from bot.store import open_db
    from trainer.synth import SynthAborted, export_jsonl, run_synth
    from trainer.synth.store import kept_sources

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("kept [green]{task.fields[kept]}[/] dropped [yellow]{task.fields[dropped]}[/] failed [red]{task.fields[failed]}[/]"),
        TextColumn("{task.fields[tokens]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, transient=False, disable=as_json,
    )
    task = progress.add_task(f"synth {spec.name}", total=options.count, kept=0, dropped=0, failed=0, tokens="")

    def on_event(event, report):
        approx = "≈" if report.tokens_estimated else ""
        tokens = f"{approx}{report.prompt_tokens:,} in / {approx}{report.completion_tokens:,} out tok"
        if report.cost_usd:
            tokens += f" · ${report.cost_usd:,.4f}"
        progress.update(task, total=report.planned, completed=report.finished + report.failed, kept=report.clean.kept,
                        dropped=sum(report.clean.dropped.values()), failed=report.failed, tokens=tokens)

    aborted = None
    exported = None
    async with open_db(settings.core.db_path) as db:
        try:
            with progress:
                try:
                    report = await run_synth(db, writer, spec, catalog, options, on_event)
                except SynthAborted as exc:
                    report, aborted = exc.report, str(exc)
        finally:
            await writer.aclose()
        if export is not None:
            plan = catalog.plan(options.count, options.seed, options.tags or None)
            ids = await kept_sources(db, spec.name, [item.key for item in plan])
            exported = await export_jsonl(db, spec, ids, export)
    return report, exported, aborted


def _dry_run(spec, catalog, options, as_json: bool) -> None:
    from rich.table import Table

    from trainer.synth.generate import item_messages

    plan = catalog.plan(options.count, options.seed, options.tags or None)
    if as_json:
        print_json([{"index": it.index, "tag": it.topic.tag, "topic": it.topic.text, "profile": it.profile.id,
                     "template": it.template.name, "template_hash": it.template.hash, "seed": it.seed, "key": it.key} for it in plan])
        return
    table = Table(title=f"Plan for {spec.name}, seed {options.seed}")
    for col in ("#", "tag", "topic", "profile", "template"):
        table.add_column(col)
    for it in plan[:50]:
        table.add_row(str(it.index), it.topic.tag, it.topic.text, it.profile.id, it.template.name)
    console.print(table)
    if len(plan) > 50:
        console.print(f"… and {len(plan) - 50} more")
    console.rule("First prompt")
    for m in item_messages(spec, plan[0]):
        console.print(f"[bold]{m['role']}:[/] {m['content']}", highlight=False, markup=True)


def _print_report(report, exported, export_path) -> None:
    from rich.table import Table

    c = report.clean
    table = Table(title=f"synth {report.persona} (seed {report.seed})", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("planned", report.planned), ("already done (skipped)", report.already_done), ("generated now", report.generated),
        ("reused from an interrupted run", report.reused), ("kept", c.kept),
        *((f"dropped: {reason}", n) for reason, n in c.as_dict()["dropped"].items()),
        ("failed after retries (rerun to retry)", report.failed), ("retries", report.retries),
        ("turns merged / trailing user turns trimmed", f"{c.merged} / {c.trimmed}"),
        ("labels normalised / names renamed in text", f"{c.relabelled} / {c.renamed}"),
        ("silence turns kept", c.silence_turns),
        ("tokens in / out" + (" (estimated)" if report.tokens_estimated else ""), f"{report.prompt_tokens:,} / {report.completion_tokens:,}"),
    ]
    if report.cost_usd:
        rows.append(("cost (USD)", f"{report.cost_usd:.4f}"))
    if exported is not None:
        rows.append((f"exported to {export_path}", exported))
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
