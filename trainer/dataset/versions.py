"""The `dataset_versions` table and its links (migration 0004).

`next_version` / `record_version` number and store a built dataset; `versions_containing_member`
and `versions_containing_source` answer "which datasets hold this data" for forgetting, and
`mark_stale` flags them.
"""
from __future__ import annotations

from pathlib import Path

import aiosqlite

from bot.store.db import transaction, utcnow


async def next_version(db: aiosqlite.Connection, persona: str) -> int:
    async with db.execute("SELECT COALESCE(MAX(version), 0) FROM dataset_versions WHERE persona = ?", (persona,)) as cur:
        (latest,) = await cur.fetchone()
    return int(latest) + 1


async def record_version(db: aiosqlite.Connection, *, persona: str, version: int, path: str, manifest_hash: str,
                         source_ids: list[int], member_ids: list[str]) -> int:
    cur = await db.execute(
        "INSERT INTO dataset_versions(persona, version, path, manifest_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (persona, version, path, manifest_hash, utcnow()))
    dataset_id = cur.lastrowid
    await db.executemany("INSERT INTO dataset_sources(dataset_id, source_id) VALUES (?, ?)", [(dataset_id, s) for s in sorted(set(source_ids))])
    await db.executemany("INSERT INTO dataset_members(dataset_id, member_id) VALUES (?, ?)", [(dataset_id, m) for m in sorted(set(member_ids))])
    await db.commit()
    return dataset_id


async def list_versions(db: aiosqlite.Connection, persona: str | None = None) -> list[dict]:
    sql = "SELECT id, persona, version, path, manifest_hash, created_at, status, stale_reason FROM dataset_versions"
    args: tuple = ()
    if persona:
        sql, args = sql + " WHERE persona = ?", (persona,)
    async with db.execute(sql + " ORDER BY persona, version", args) as cur:
        return [dict(r) for r in await cur.fetchall()]


async def versions_containing_member(db: aiosqlite.Connection, member_id: str) -> list[int]:
    async with db.execute("SELECT dataset_id FROM dataset_members WHERE member_id = ? ORDER BY dataset_id", (member_id,)) as cur:
        return [r[0] for r in await cur.fetchall()]


async def versions_containing_source(db: aiosqlite.Connection, source_id: int) -> list[int]:
    async with db.execute("SELECT dataset_id FROM dataset_sources WHERE source_id = ? ORDER BY dataset_id", (source_id,)) as cur:
        return [r[0] for r in await cur.fetchall()]


async def mark_stale(db: aiosqlite.Connection, dataset_ids: list[int], reason: str) -> int:
    if not dataset_ids:
        return 0
    marks = ",".join("?" * len(dataset_ids))
    async with transaction(db):   # joins forget_user's transaction when called from its hook
        cur = await db.execute(f"UPDATE dataset_versions SET status = 'stale', stale_reason = ? WHERE id IN ({marks})", (reason, *dataset_ids))
    return cur.rowcount


# Files of a dataset version that hold conversation text; manifest.json and report.md hold counts only.
EXAMPLE_FILES = ("train.jsonl", "val.jsonl")
EXAMPLE_DIRS = ("hf",)
PURGED_NOTE = "PURGED.txt"


def purge_examples(folder: Path | str, reason: str) -> list[str]:
    """Delete the example files of a stale dataset version, keeping its manifest for audit.

    Returns what was removed. A note in the folder says why, so nobody retrains on a half folder.
    """
    import shutil

    folder = Path(folder)
    removed = []
    for name in EXAMPLE_FILES:
        if (folder / name).is_file():
            (folder / name).unlink()
            removed.append(name)
    for name in EXAMPLE_DIRS:
        if (folder / name).is_dir():
            shutil.rmtree(folder / name)
            removed.append(name + "/")
    if folder.is_dir():
        (folder / PURGED_NOTE).write_text(f"Examples removed: {reason}\nRemoved: {', '.join(removed) or 'nothing'}\n",
                                          encoding="utf-8")
    return removed


async def dataset_provenance(db: aiosqlite.Connection, persona: str, version_name: str | None) -> dict | None:
    """A model version's dataset, for provenance: `{"version", "manifest_sha256", "members"}`.

    `version_name` is what the registry stores (`v3`, the dataset folder's name); None when unknown.
    `members` counts the distinct Discord members whose consented logs are in the dataset.
    """
    if not version_name or not version_name.lstrip("v").isdigit():
        return None
    async with db.execute("SELECT id, manifest_hash FROM dataset_versions WHERE persona = ? AND version = ?",
                          (persona, int(version_name.lstrip("v")))) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    async with db.execute("SELECT COUNT(DISTINCT member_id) FROM dataset_members WHERE dataset_id = ?", (row[0],)) as cur:
        (members,) = await cur.fetchone()
    return {"version": version_name, "manifest_sha256": row[1], "members": int(members)}
