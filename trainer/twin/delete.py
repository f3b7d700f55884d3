"""`delete_twin`: every row and file of a twin, and no copy of its words left in the database file.

Rows: every table keyed by the persona (`bot.store.twins.delete_persona_rows`: sources and their
messages, dataset versions, model versions and metrics, registry events, training runs, logged
conversations, bindings, the twin and its shares) in one transaction on a `secure_delete`
connection, then `purge_deleted` truncates the WAL. Files: the persona folder and the twin's
folders under the data directory (datasets, training runs, adapters, uploads, its training lock).
Only a shipped persona is refused: deleting TIM is not what this is for.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import aiosqlite

from bot.settings import Settings
from trainer.twin import TwinError


def twin_paths(settings: Settings, name: str) -> list[Path]:
    data = settings.core.data_dir
    return [settings.core.member_personas_dir / name, data / "datasets" / name, data / "runs" / name,
            settings.core.adapters_dir / name, data / "uploads" / name, data / "locks" / f"train-{name}.lock"]


async def delete_twin(db: aiosqlite.Connection, settings: Settings, name: str) -> dict:
    from bot.store.db import purge_deleted
    from bot.store.twins import delete_persona_rows, get_twin

    shipped = settings.core.resolved_personas_dir() / name
    if (shipped / "persona.toml").is_file():
        raise TwinError(f"{name!r} is a shipped persona, not a twin; it cannot be deleted here")
    if await get_twin(db, name) is None and not (settings.core.member_personas_dir / name).exists():
        raise TwinError(f"no twin called {name!r}")
    rows = await delete_persona_rows(db, name)
    wal_clean = await purge_deleted(db)
    removed = []
    for path in twin_paths(settings, name):
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(str(path))
        elif path.exists():
            path.unlink()
            removed.append(str(path))
    return {"twin": name, "rows": rows, "removed": removed, "wal_truncated": wal_clean}


async def delete_member_twins(db: aiosqlite.Connection, settings: Settings, member_id: str) -> list[str]:
    """Forgetting a member: every twin they control goes, files included (`personabot privacy forget`)."""
    from bot.store.twins import list_twins

    names = [t.persona for t in await list_twins(db, str(member_id))]
    for name in names:
        await delete_twin(db, settings, name)
    return names
