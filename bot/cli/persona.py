"""`personabot persona import|export`: personas as Tavern character cards (V1, V2, V3)."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from bot.cli.common import JSON_OPTION, console, err_console, fail, load_persona_or_exit, print_json, run_async, settings_from

persona_app = typer.Typer(
    help="Import and export personas as character cards (the PNG/JSON format of SillyTavern and character sites), "
         "and delete member personas.",
    no_args_is_help=True,
)


@persona_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="A card: PNG (tEXt chunk 'ccv3' or 'chara'), JSON (V1, chara_card_v2 or chara_card_v3), "
                                     "or a zip written by `persona export --with-adapter`."),
    name: str = typer.Option(None, "--name", help="Persona (folder) name; default: made from the character's name."),
    backend: str = typer.Option(None, "--backend", help="local, openai or vllm (default: local, or what a personabot card ran on)."),
    model: str = typer.Option(None, "--model", help="Model that serves the persona (default: the embedded smollm2-135m-instruct)."),
    display_name: str = typer.Option(None, "--display-name", help="Name shown in Discord (default: the card's name)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a member persona from a character card, under <data dir>/personas/NAME.

    The card's description, personality and scenario become the system prompt, its first message the greeting /chat posts, its example dialogues seeds for synthetic data and probes, and its lorebook keyword-triggered context. The card itself is kept verbatim (card.json) for export. Names and display names that another persona has are refused.
    """  # noqa: E501  (one line per paragraph: rich help keeps line breaks)
    from rich.markup import escape

    from bot.persona.card_files import MAX_BUNDLE_BYTES, import_card
    from bot.persona.cards import MAX_PNG_BYTES, CardError

    core = settings_from(ctx).core
    with file.open("rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    limit = MAX_BUNDLE_BYTES if is_zip else MAX_PNG_BYTES
    if file.stat().st_size > limit:   # checked before reading a huge file into memory
        raise fail(f"{file.name}: {file.stat().st_size / 2**20:.1f} MB is over the {limit // 2**20} MB limit for a "
                   f"{'bundle' if is_zip else 'card'}")
    try:
        result = import_card(file.read_bytes(), file.name, dirs=core.persona_dirs(), dest_root=core.member_personas_dir,
                             name=name, model={"backend": backend, "model": model}, display_name=display_name)
    except CardError as exc:
        raise fail(str(exc))
    spec = result.spec
    report = {"name": result.name, "display_name": spec.display_name, "folder": str(result.folder),
              "spec": result.card.spec, "source": result.card.source, "greeting": bool(spec.greeting),
              "examples": result.examples, "lorebook_entries": len(spec.lore.entries) if spec.lore else 0,
              "avatar": spec.avatar_file, "warnings": result.warnings}
    if as_json:
        print_json(report)
        return
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    console.print(f"[green]Imported[/] {escape(spec.display_name)} as persona [bold]{escape(result.name)}[/] "
                  f"({result.card.spec}, {report['examples']} example dialogue(s), "
                  f"{report['lorebook_entries']} lorebook entr{'y' if report['lorebook_entries'] == 1 else 'ies'}) "
                  f"in {escape(str(result.folder))}.", highlight=False)
    console.print(f"Serve it: `personabot chat --persona {escape(result.name)}`, or `/persona set` in Discord after a restart.",
                  highlight=False)


@persona_app.command("export")
def export(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The persona to export."),
    output: Path = typer.Option(..., "-o", "--output", dir_okay=False, help="File to write (.png, .json, or .zip with --with-adapter)."),
    fmt: str = typer.Option(None, "--format", help="png or json; default: from the output's extension, else png."),
    with_adapter: bool = typer.Option(False, "--with-adapter", help="Write a zip: the PNG card plus the active adapter folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a persona as a character card: V2 ('chara') with a parallel V3 ('ccv3') chunk in the PNG.

    The image is the persona's avatar or a generated placeholder. Provenance goes under data.extensions.personabot: backend and base model, the active version and the sha256 of its adapter, the dataset version and its manifest hash, and the consent scope. Weights are never embedded; --with-adapter puts the adapter folder beside the card in a zip.
    """  # noqa: E501  (one line per paragraph: rich help keeps line breaks)
    from rich.markup import escape

    from bot.persona import PersonaError
    from bot.persona.card_files import adapter_folder, export_bundle, export_card, provenance
    from bot.persona.cards import CardError
    from bot.store import open_db, registry

    settings = settings_from(ctx)
    spec = load_persona_or_exit(ctx, name)
    fmt = (fmt or ("json" if output.suffix.lower() == ".json" else "png")).lower()
    if fmt not in ("png", "json"):
        raise fail(f"--format: expected png or json (got {fmt!r})")
    if with_adapter and fmt != "png":
        raise fail("--with-adapter bundles the PNG card; drop --format json")
    if output.exists() and not force:
        raise fail(f"{output} already exists (use --force to overwrite)")

    async def gather():
        async with open_db(settings.core.db_path) as db:
            prov = await provenance(db, spec)
            version = await registry.active_version(db, spec.name)
        return prov, (version.adapter_path if version else None)

    prov, version_adapter = run_async(gather())
    try:
        if with_adapter:
            data = export_bundle(spec, prov, adapter_folder(spec, prov, version_adapter))
        else:
            data = export_card(spec, prov, fmt)
    except (CardError, PersonaError) as exc:
        raise fail(str(exc))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(output)
    report = {"persona": spec.name, "output": str(output), "format": "zip" if with_adapter else fmt, "bytes": len(data),
              "provenance": prov}
    if as_json:
        print_json(report)
        return
    version = (prov.get("active_version") or {}).get("name") or "no trained version"
    console.print(f"[green]Exported[/] {escape(spec.display_name)} to {escape(str(output))} ({len(data):,} bytes; "
                  f"{escape(version)}; {escape(prov['consent'])}).", highlight=False)


@persona_app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The member persona to delete (one imported from a card, or a twin)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete a member persona and everything kept for it: its folder under <data dir>/personas, its datasets, training runs, adapters and model versions, its channel bindings, reviews and logged conversations.

    No copy of its rows stays in the database file (secure_delete, then the WAL is truncated). Shipped personas (the repository's personas/ folder) are refused. A running bot keeps serving the persona until it restarts; `/persona delete` in Discord also stops it at once.
    """  # noqa: E501  (one line per paragraph: rich help keeps line breaks)
    from rich.markup import escape

    from bot.persona import PersonaError, persona_folders
    from bot.persona.removal import delete_member_persona, is_shipped
    from bot.store import open_db

    settings = settings_from(ctx)
    if is_shipped(settings, name):
        raise fail(f"{name!r} is a shipped persona (in {settings.core.resolved_personas_dir()}); only member personas "
                   f"(under {settings.core.member_personas_dir}) can be deleted")
    if name not in persona_folders([settings.core.member_personas_dir]):
        known = ", ".join(persona_folders([settings.core.member_personas_dir])) or "none"
        raise fail(f"no member persona called {name!r} in {settings.core.member_personas_dir} (member personas: {known})")
    if not yes:
        if not sys.stdin.isatty():
            raise fail(f"this deletes persona {name!r} and everything kept for it; add --yes to confirm", 2)
        if not typer.confirm(f"Delete persona {name!r}, its adapters, datasets and logged conversations? This cannot be undone"):
            raise typer.Exit(1)

    async def go():
        async with open_db(settings.core.db_path) as db:
            return await delete_member_persona(db, settings, name)

    try:
        report = run_async(go())
    except PersonaError as exc:
        raise fail(str(exc))
    if as_json:
        print_json(report)
        return
    rows = sum(report["rows"].values())
    console.print(f"Deleted persona {escape(name)}: {rows} row(s), {len(report['removed'])} folder(s)/file(s)."
                  + ("" if report["wal_truncated"] else " (Another process holds the database open: its WAL is "
                     "truncated when that process closes it.)"), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(persona_app, name="persona")
