"""`personabot db upgrade|version`: apply numbered migrations to the data directory's database."""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, print_json, run_async, settings_from

db_app = typer.Typer(help="Manage the SQLite database (schema migrations).", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
