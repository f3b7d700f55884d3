"""`personabot personas`: list the persona folders and validate every spec."""
from __future__ import annotations

import typer

from bot.cli.common import JSON_OPTION, console, fail, print_json, settings_from


def personas(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List and validate the shipped and member-created personas (exit 1 if any spec is invalid).

    Each persona is a folder with a `persona.toml`; keys are documented in bot/persona/spec.py.
    """
    from rich.table import Table

    from bot.persona import PersonaError, load_persona, persona_folders

    core = settings_from(ctx).core
    folder = core.resolved_personas_dir()
    rows, errors = [], []
    for name, persona_folder in persona_folders(core.persona_dirs()).items():
        origin = "shipped" if persona_folder.parent == folder else "member"
        try:
            spec = load_persona(persona_folder)
            rows.append({"name": name, "display_name": spec.display_name, "backend": spec.model.backend,
                         "model": spec.model.model, "adapter": spec.model.adapter, "may_stay_silent": spec.may_stay_silent,
                         "description": spec.description, "origin": origin, "folder": str(persona_folder), "valid": True})
        except PersonaError as exc:
            errors.append(str(exc))
            rows.append({"name": name, "origin": origin, "folder": str(persona_folder), "valid": False, "error": str(exc)})
    if as_json:
        print_json({"folder": str(folder), "member_folder": str(core.member_personas_dir), "personas": rows})
    else:
        table = Table(title=f"Personas in {folder} (shipped) and {core.member_personas_dir} (member-created)")
        for col in ("name", "origin", "display name", "backend", "model", "description"):
            table.add_column(col)
        for r in rows:
            if r["valid"]:
                table.add_row(r["name"], r["origin"], r["display_name"], r["backend"], r["model"], r["description"])
            else:
                table.add_row(r["name"], r["origin"], "[red]invalid[/]", "", "", "")
        console.print(table)
    if errors:
        raise fail("\n".join(errors))
    if not rows:
        raise fail(f"no personas found in {folder} (each needs <name>/persona.toml)")


def register(app: typer.Typer) -> None:
    app.command("personas")(personas)
