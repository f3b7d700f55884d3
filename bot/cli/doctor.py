"""`personabot doctor`: check the installation and configuration, one line per check."""
from __future__ import annotations

import importlib.util
import sys

import typer

from bot.cli.common import JSON_OPTION, console, print_json, run_async, settings_from


def _check_extras() -> list[tuple[str, bool, str]]:
    rows = []
    for extra, modules in {"local": ["torch", "transformers", "peft"], "train": ["trl", "datasets", "datasketch"]}.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        rows.append((f"extra [{extra}]", not missing,
                     "installed" if not missing else f"missing {', '.join(missing)}: pip install -e '.[{extra}]'"))
    return rows


async def _checks(settings, probe_backends: bool) -> list[tuple[str, bool, str]]:
    from bot.backends.base import BackendError
    from bot.backends.pool import BackendPool
    from bot.persona import PersonaError, load_personas
    from bot.store.db import connect, current_version, latest_version

    rows: list[tuple[str, bool, str]] = [
        ("python", sys.version_info >= (3, 11), sys.version.split()[0]),
    ]
    data_dir = settings.core.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        rows.append(("data dir", True, str(data_dir.resolve())))
    except OSError as exc:
        rows.append(("data dir", False, f"{data_dir}: {exc}"))
    try:
        db = await connect(settings.core.db_path)
        version = await current_version(db)
        await db.close()
        latest = latest_version()
        # Behind is fine (every command upgrades on open); ahead means this code is too old for the file.
        detail = f"schema {version}/{latest}" + ("" if version == latest else
                  ": upgraded on next start, or run `personabot db upgrade`" if version < latest else
                  ": created by a newer personabot; upgrade the package")
        rows.append(("database", version <= latest, detail))
    except Exception as exc:  # report, don't crash: that's the point of doctor
        rows.append(("database", False, str(exc)))
    personas = {}
    try:
        personas = load_personas(settings.core.persona_dirs())
        rows.append(("personas", bool(personas), ", ".join(personas) or "none found"))
    except PersonaError as exc:
        rows.append(("personas", False, str(exc)))
    rows.extend(_check_extras())
    rows.append(("discord token", True, "configured" if settings.discord.token else "not set: `run` opens the terminal chat"))
    if probe_backends and personas:
        pool = BackendPool(settings)
        try:
            for name, spec in personas.items():
                if spec.model.backend == "local":
                    continue  # loading weights is not a quick check; `chat` does it
                try:
                    status = await pool.for_persona(spec).health()
                    rows.append((f"backend {name}", True, f"{spec.model.backend}: {status}"))
                except BackendError as exc:
                    rows.append((f"backend {name}", False, f"{spec.model.backend}: {exc}"))
        finally:
            await pool.aclose()
    return rows


def doctor(
    ctx: typer.Context,
    backends: bool = typer.Option(True, "--backends/--no-backends", help="Also contact remote (OpenAI/vLLM) backends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check Python, data directory, database schema, personas, installed extras and backends."""
    from rich.markup import escape

    rows = run_async(_checks(settings_from(ctx), backends))
    if as_json:
        print_json([{"check": n, "ok": ok, "detail": d} for n, ok, d in rows])
    else:
        for name, ok, detail in rows:
            console.print(f"{'[green]ok[/]  ' if ok else '[red]FAIL[/]'} {escape(name)}: {escape(detail)}", highlight=False)
    if not all(ok for _, ok, _ in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
