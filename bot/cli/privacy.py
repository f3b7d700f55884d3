"""`personabot privacy export|forget`: a member's stored data, from the terminal.

The same store functions back Discord's `/privacy export` and `/privacy forget`. Forgetting also
runs the default forget hooks (the trainer marks datasets stale and adapters tainted).
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

from bot.cli.common import console, print_json, run_async, settings_from

privacy_app = typer.Typer(help="Export or delete everything stored about a member.", no_args_is_help=True)


@privacy_app.command("export")
def export(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="Member id (Discord user id)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the JSON here instead of printing it."),
) -> None:
    """Print (or write) everything stored about a member as JSON."""
    from bot.store import open_db
    from bot.store.privacy import export_user

    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await export_user(db, user)

    data = run_async(go())
    if out:
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        console.print(f"Wrote {out}")
    else:
        print_json(data)


@privacy_app.command("forget")
def forget(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="Member id (Discord user id)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print the deletion counts as JSON."),
) -> None:
    """Delete everything stored about a member; dataset versions and models that used it are flagged."""
    from bot.store import open_db
    from bot.store.privacy import forget_user

    if not yes and not typer.confirm(f"Delete everything stored about {user}? This cannot be undone"):
        raise typer.Exit(1)
    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            try:   # the member's twins are their data too: rows and files (needs the trainer installed)
                from trainer.twin.delete import delete_member_twins
            except ImportError:
                twins = []
            else:
                twins = await delete_member_twins(db, settings, user)
            counts = await forget_user(db, user)
            return {**counts, "twins_deleted": len(twins)}

    counts = run_async(go())
    if as_json:
        print_json({"user": user, "deleted": counts})
    else:
        console.print(f"Deleted data of {user}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
