"""`personabot db upgrade|version|backup|restore`: migrations, and online backups of the database.

`backup` is safe while the bot and trainer run (SQLite's online backup API; see
`bot.store.backup`); `restore` refuses while either of them has the database open."""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import JSON_OPTION, console, fail, print_json, run_async, settings_from

db_app = typer.Typer(help="Manage the SQLite database: schema migrations, backup and restore.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Apply every pending migration to the database in the data directory (creating it if needed)."""
    from bot.store.db import connect, current_version, latest_version, migrate

    settings = settings_from(ctx)

    async def go():
        db = await connect(settings.core.db_path)
        try:
            before = await current_version(db)
            applied = await migrate(db)
            return before, applied, await current_version(db)
        finally:
            await db.close()

    before, applied, after = run_async(go())
    report = {"database": str(settings.core.db_path), "from": before, "to": after, "applied": applied, "latest": latest_version()}
    if as_json:
        print_json(report)
    elif applied:
        console.print(f"Upgraded {settings.core.db_path} from version {before} to {after}: {', '.join(applied)}")
    else:
        console.print(f"{settings.core.db_path} is up to date (version {after}).")


@db_app.command("version")
def version(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the database's schema version and the latest one this code knows."""
    from bot.store.db import connect, current_version, latest_version

    settings = settings_from(ctx)

    async def go():
        db = await connect(settings.core.db_path)
        try:
            return await current_version(db)
        finally:
            await db.close()

    have = run_async(go())
    if as_json:
        print_json({"database": str(settings.core.db_path), "version": have, "latest": latest_version()})
    else:
        console.print(f"{settings.core.db_path}: version {have} (latest {latest_version()})")


@db_app.command("backup")
def backup(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="Where to write the copy; a folder (existing, or ending in /) gets a timestamped file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Copy the database to FILE while the bot keeps running: one consistent snapshot, integrity-checked."""
    from bot.store.backup import BackupError, backup_database

    settings = settings_from(ctx)
    try:
        report = backup_database(settings.core.db_path, file)
    except BackupError as exc:
        raise fail(str(exc))
    if as_json:
        print_json(vars(report))
    else:
        console.print(f"Backed up {report.source} to {report.destination} "
                      f"({report.bytes / 1e6:.1f} MB, schema {report.schema_version}, integrity ok).", highlight=False)


@db_app.command("restore")
def restore(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A backup made by `personabot db backup`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace the database with FILE. Refuses while a bot or trainer runs; the old database is kept beside it."""
    from bot.store.backup import BackupError, restore_database

    settings = settings_from(ctx)
    try:
        report = restore_database(file, settings.core.db_path)
    except BackupError as exc:
        raise fail(str(exc))
    if as_json:
        print_json(vars(report))
        return
    console.print(f"Restored {report.destination} from {report.source} (schema {report.schema_version}).", highlight=False)
    if report.saved_previous:
        console.print(f"The database it replaced is kept at {report.saved_previous}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
