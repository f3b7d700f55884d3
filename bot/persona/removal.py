"""`delete_member_persona`: a member persona (an imported card, a twin) and everything kept for it.

Rows: every table keyed by the persona (`bot.store.persona_rows`), in one transaction on a
`secure_delete` connection, then `purge_deleted` truncates the WAL so no copy of its words stays in
the database file. Files: the persona folder and its folders under the data directory (datasets,
training runs, adapters, uploads, its training lock). The folder is first renamed aside, so a crash
part-way leaves either the persona or nothing that loads as one. Shipped personas (the repository's
`personas/`) are refused: they are not member data, and deleting TIM is not what this is for.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import aiosqlite

from bot.persona.loader import PersonaError
from bot.settings import Settings


def persona_paths(settings: Settings, name: str) -> list[Path]:
    """Every file and folder kept for persona `name` under the data directory."""
    data = settings.core.data_dir
    return [settings.core.member_personas_dir / name, data / "datasets" / name, data / "runs" / name,
            settings.core.adapters_dir / name, data / "uploads" / name, data / "locks" / f"train-{name}.lock"]


def is_shipped(settings: Settings, name: str) -> bool:
    return (settings.core.resolved_personas_dir() / name / "persona.toml").is_file()


async def delete_member_persona(db: aiosqlite.Connection, settings: Settings, name: str) -> dict:
    """Delete persona `name`'s rows and files. Returns {persona, rows: {table: n}, removed: [paths], wal_truncated}."""
    from bot.store.db import purge_deleted
    from bot.store.persona_rows import delete_persona_rows

    if is_shipped(settings, name):
        raise PersonaError(f"{name!r} is a shipped persona (in {settings.core.resolved_personas_dir()}), not a member "
                           "persona; it cannot be deleted")
    folder = settings.core.member_personas_dir / name
    # Renamed aside first: the loader never sees a half-deleted folder, and the rows go after it.
    aside = folder.with_name(f".deleting-{name}-{uuid.uuid4().hex[:8]}") if folder.exists() else None
    if aside is not None:
        folder.rename(aside)
    rows = await delete_persona_rows(db, name)
    wal_clean = await purge_deleted(db)
    removed = []
    for path in [aside or folder, *persona_paths(settings, name)[1:]]:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(str(folder if path == aside else path))
        elif path.exists():
            path.unlink()
            removed.append(str(path))
    return {"persona": name, "rows": rows, "removed": removed, "wal_truncated": wal_clean}
