"""`personabot privacy audit --user ID`: which dataset and model versions contain a member's data.

Registered as `audit` in the bot's `privacy` group when it exists (beside `export` and `forget`),
else as a top-level `privacy-audit` command.
"""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, print_json, run_async, settings_from


def audit(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="Member id (Discord user id)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the dataset versions that contain a member's data and the model versions trained on them."""
    from bot.store import open_db
    from trainer.forget import audit_user

    settings = settings_from(ctx)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await audit_user(db, user)

    result = run_async(go())
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"Member {user}: {result.stored_messages} stored message(s), "
                  f"{result.approved_not_yet_trained} approved reply(ies) not yet in a dataset.", highlight=False)
    if not result.datasets:
        console.print("No dataset version contains this member's data.")
        return
    for d in result.datasets:
        console.print(f"dataset {d.persona}/{d.version}: {d.status}" + (f" ({d.stale_reason})" if d.stale_reason else ""),
                      highlight=False)
    for m in result.models:
        flag = ", tainted" if m["tainted"] else ""
        console.print(f"model {m['name']} ({m['status']}{flag}) trained on {m['dataset_version']}", highlight=False)
    if result.active_models:
        console.print(f"Serving now: {', '.join(result.active_models)}. After `personabot privacy forget`, the next "
                      "scheduled run retrains without this data (or `personabot trainer --force --persona NAME`).")


def register(app: typer.Typer) -> None:
    try:
        from bot.cli.privacy import privacy_app
    except ImportError:
        app.command("privacy-audit")(audit)
    else:
        privacy_app.command("audit")(audit)
