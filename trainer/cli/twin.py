"""`personabot twin create|build|insights|delete`: digital twins from the terminal.

A twin is a member persona under `<data_dir>/personas/NAME` made from the shipped twin template;
import your exports into it with `personabot import KIND PATH --persona NAME`, then `twin build`.
Every other command (`dataset build`, `train`, `eval`, `chat`, `model`) works on it with
`--persona NAME`. The workers live in `trainer/twin/`; these commands only parse and print.
"""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from

twin_app = typer.Typer(help="Digital twins: a persona that writes like you, from your own exports (see README, \"Digital twins\").",
                       no_args_is_help=True)


@twin_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The twin's persona name (lower case letters, digits, - and _), e.g. sam."),
    owner_name: str = typer.Option(..., "--owner-name", help="Your name as the twin shows it, e.g. \"Sam\"; shared twins are labelled \"Sam (AI twin)\"."),
    owner_id: list[str] = typer.Option([], "--owner-id", help="Your sender id or exact display name in your exports (repeatable); most exports name their owner themselves."),
    model: str = typer.Option(None, "--model", help="Base model (default: the template's embedded SmolLM2); a Hugging Face folder or .gguf file also works."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a twin persona from the twin template under the data directory."""
    from bot.store import open_db
    from trainer.twin import TwinError
    from trainer.twin.create import create_twin

    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await create_twin(db, settings, name, owner_name=owner_name, owner_ids=owner_id, model=model)

    try:
        spec = run_async(go())
    except TwinError as exc:
        raise fail(str(exc))
    if as_json:
        print_json({"twin": spec.name, "folder": str(spec.folder), "display_name": spec.display_name, "owner_ids": owner_id})
        return
    console.print(f"Created twin [bold]{spec.name}[/] ({spec.display_name}) in {spec.folder}.\n"
                  f"Next: personabot import twitter YOUR-ARCHIVE.zip --persona {spec.name}\n"
                  f"      personabot twin build {spec.name}", highlight=False)


def _twin_or_exit(ctx: typer.Context, name: str):
    return load_persona_or_exit(ctx, name)


@twin_app.command("build")
def build(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The twin to build."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop training after this many steps (a quick first try)."),
    no_prompted_posts: bool = typer.Option(False, "--no-prompted-posts", help="Leave posts-only sessions (tweets, ...) out of the dataset."),
    promote_anyway: bool = typer.Option(False, "--promote-anyway", help="Serve the new version even if the evaluation gate rejects it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Dataset build → train → eval from the imported sources; prints the gate's report and the twin's first replies."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.store import open_db
    from trainer.twin import TwinError
    from trainer.twin.build import build_twin

    settings = settings_from(ctx)
    spec = _twin_or_exit(ctx, name)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                  console=err_console, disable=as_json, transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, detail: str, done, total) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, detail=detail)
            bar.update(tasks[stage], completed=done or 0, total=total, detail=detail)

        async def go():
            async with open_db(settings.core.db_path) as db:
                return await build_twin(db, settings, spec, max_steps=max_steps, prompted_posts=not no_prompted_posts,
                                        promote_anyway=promote_anyway, progress=progress)

        try:
            result = run_async(go())
        except TwinError as exc:
            raise fail(str(exc))
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(result.text(), highlight=False, markup=False)
    if result.status not in ("candidate", "active", "failed") or (result.status == "failed" and not result.gate):
        raise typer.Exit(1)


@twin_app.command("insights")
def insights(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The twin."),
    png: Path = typer.Option(None, "--png", help="Also write one chart (by year, top words, lengths) to this PNG file."),
    examples: int = typer.Option(5, "--examples", min=0, help="Held-out contexts to compare your real reply with the twin's."),
    language: str = typer.Option(None, "--language", help="Your messages' language (ISO 639-1, e.g. de) for stop words; default: the common languages together."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with the keys by_year, top_words, top_emoji, lengths, side_by_side."),
) -> None:
    """What the twin was trained on (by year, top words and emoji, lengths) and its replies beside yours."""
    from bot.store import open_db
    from trainer.twin.insights import summary_text, twin_insights, write_png

    settings = settings_from(ctx)
    spec = _twin_or_exit(ctx, name)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await twin_insights(db, settings, spec, examples=examples, language=language)

    with err_console.status("Reading your messages…" + (" and asking the twin" if examples else "")):
        data = run_async(go())
    if png is not None:
        write_png(data, png)
    if as_json:
        print_json(data)
    else:
        console.print(summary_text(data), highlight=False, markup=False)
        if png is not None:
            console.print(f"Chart: {png}", highlight=False)


@twin_app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The twin to delete."),
    yes: bool = typer.Option(False, "--yes", help="Really delete: the persona, its sources, datasets, adapters, model versions and rows."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete a twin and everything made from your data; no copy of its words stays in the database file."""
    from bot.store import open_db
    from trainer.twin import TwinError
    from trainer.twin.delete import delete_twin

    if not yes:
        raise fail(f"this deletes twin {name!r} and everything made from its data; add --yes to confirm", 2)
    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await delete_twin(db, settings, name)

    try:
        report = run_async(go())
    except TwinError as exc:
        raise fail(str(exc))
    if as_json:
        print_json(report)
        return
    rows = sum(report["rows"].values())
    console.print(f"Deleted twin {name}: {rows} rows, {len(report['removed'])} folders/files."
                  + ("" if report["wal_truncated"] else " (another process holds the database open: its WAL is truncated when it closes)"),
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(twin_app, name="twin")
