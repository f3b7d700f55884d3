"""`personabot import KIND PATH`: import a chat export as a training source of a persona.

Prints a summary (imported, skipped by reason, merged) and the first problems, each as
`file:location: reason`. A file of the wrong kind is a one-line error and exit code 2.
"""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import JSON_OPTION, console, err_console, load_persona_or_exit, print_json, run_async, settings_from


def fail(message: str, code: int = 1) -> typer.Exit:
    """One-line error: soft-wrapped so a long path does not break it over several lines."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def import_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="Export kind: whatsapp, telegram, discord-package, discord-exporter, twitter, facebook, instagram, facebook-posts, instagram-posts, jsonl, csv (and transcripts where installed)."),
    path: Path = typer.Argument(..., help="The export: a file, a folder, or the .zip the service produced."),
    persona: str = typer.Option(..., "--persona", "-p", help="Persona whose training sources this export joins."),
    owner: list[str] = typer.Option([], "--owner", "-o", help="The owner's sender id, or an exact display name (repeatable for aliases). Never matched as a substring. Optional where the export names its owner (Discord package, Twitter, Telegram full export, jsonl, csv)."),
    date_order: str = typer.Option(None, "--date-order", help="WhatsApp: force 'dmy', 'mdy' or 'ymd' instead of inferring day/month order."),
    prompt_column: str = typer.Option("prompt", "--prompt-column", help="csv: name of the prompt column."),
    response_column: str = typer.Option("response", "--response-column", help="csv: name of the response column."),
    speaker_role: list[str] = typer.Option([], "--speaker-role", help="transcripts: LABEL=user|assistant (repeatable)."),
    region: str = typer.Option(None, "--region", help="Phone region of the export's national numbers (two-letter code: GB, DE, US...), for PII scrubbing. Default: what the export shows (participants' or the owner's +CC numbers, the account's phone or locale, the language of WhatsApp's system lines), else none: numbers are then tried against 26 common regions' national forms."),
    show_problems: int = typer.Option(20, "--show-problems", help="How many problems to list (all are counted)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a chat export (or chat JSONL/CSV) into a persona's training sources. Re-importing the same file is a no-op."""
    from bot.store import open_db
    from trainer.dataset.ingest import import_export
    from trainer.importers import ImportFormatError, ImportOptions

    if date_order is not None and date_order not in ("dmy", "mdy", "ymd"):
        raise fail("--date-order must be dmy, mdy or ymd", 2)
    roles = {}
    for item in speaker_role:
        label, _, role = item.partition("=")
        if role not in ("user", "assistant"):
            raise fail(f"--speaker-role {item!r}: expected LABEL=user or LABEL=assistant", 2)
        roles[label] = role
    from trainer.dataset.phones import normalise_region

    try:
        region = normalise_region(region)
    except ValueError as exc:
        raise fail(f"--region {exc}", 2)
    spec = load_persona_or_exit(ctx, persona)
    settings = settings_from(ctx)
    options = ImportOptions(owner=tuple(owner), date_order=date_order, speaker_roles=roles,
                            prompt_column=prompt_column, response_column=response_column,
                            allow_silence=spec.may_stay_silent, region=region)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await import_export(db, persona=persona, kind=kind, path=path, options=options)

    try:
        with err_console.status(f"Importing {path} as {kind}…"):
            report = run_async(go())
    except ImportFormatError as exc:
        raise fail(str(exc), 2)
    if as_json:
        print_json(report.as_dict(show_problems))
        return
    c = report.counts
    if not report.created:
        console.print(f"Already imported for {persona} as source {report.source_id} (same content hash); nothing to do.")
        return
    skipped = ", ".join(f"{k}: {v}" for k, v in c.get("skipped", {}).items()) or "none"
    console.print(f"Imported source {report.source_id} ({kind}) for {persona}: {c['imported']} messages, "
                  f"skipped {c['skipped_total']} ({skipped}), merged {c['merged']} continuation lines; owner {', '.join(report.owner_ids)}.")
    console.print(f"Phone region for PII: {report.region} ({report.region_from})" if report.region
                  else "Phone region for PII: none found (numbers are tried against 26 common regions; --region names yours)")
    for problem in report.problems[:show_problems]:
        console.print(f"  [yellow]{problem}[/]", highlight=False, markup=True)
    if len(report.problems) > show_problems:
        console.print(f"  … and {len(report.problems) - show_problems} more (use --show-problems or --json)")


def register(app: typer.Typer) -> None:
    app.command("import", help=import_command.__doc__)(import_command)
