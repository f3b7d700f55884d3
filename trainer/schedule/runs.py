"""The `training_runs` table (migration 0009): what each scheduled or forced run saw and decided.

`data_cutoff` is the time a run read its data: approved examples curated after the cutoff of the
last run that trained are the "new" ones. A run left `running` by a process that died is marked
`interrupted` by the next run of that persona (which holds the lock, so the other one is gone).
`notice` is the message for the persona's admin channel; `notified_at` stays empty until it was
posted, so a bot started later can still post what a separate trainer process did.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import aiosqlite

from bot.serving.run_notices import mark_notified, pending_notices  # noqa: F401  (one definition, bot side)
from bot.store import curation
from bot.store.db import utcnow

#: Runs that trained a version: their cut-off is where "new examples" are counted from.
TRAINED = ("promoted", "awaiting", "rejected")


@dataclass(frozen=True)
class TrainingRun:
    id: int
    persona: str
    trigger: str
    status: str
    reason: str | None
    data_cutoff: str
    new_examples: int | None
    dataset_version: str | None
    model_version: str | None
    pid: int | None
    started_at: str
    finished_at: str | None
    report: dict
    notice: str | None
    notified_at: str | None


def _run(row) -> TrainingRun:
    d = dict(row)
    d["report"] = json.loads(d["report"] or "{}")
    return TrainingRun(**d)


_COLUMNS = ("id, persona, trigger, status, reason, data_cutoff, new_examples, dataset_version, model_version, pid, "
            "started_at, finished_at, report, notice, notified_at")


async def last_trained_cutoff(db: aiosqlite.Connection, persona: str) -> str | None:
    return await curation.last_training_cutoff(db, persona)


async def count_new_approved(db: aiosqlite.Connection, persona: str, since: str | None, until: str,
                             scope: curation.Scope | None = None) -> int:
    """Approved or corrected items of `persona` curated in (since, until], within its training scope."""
    return await curation.count_approved(db, persona, since, until, scope)


async def mark_interrupted(db: aiosqlite.Connection, persona: str) -> int:
    """Runs left 'running' by a dead process (call while holding the persona's lock)."""
    cur = await db.execute("UPDATE training_runs SET status = 'interrupted', finished_at = ?, "
                           "reason = 'the trainer stopped during this run (crash or shutdown)' "
                           "WHERE persona = ? AND status = 'running'", (utcnow(), persona))
    await db.commit()
    return cur.rowcount


async def start_run(db: aiosqlite.Connection, persona: str, trigger: str, data_cutoff: str, new_examples: int) -> int:
    cur = await db.execute(
        "INSERT INTO training_runs(persona, trigger, status, data_cutoff, new_examples, pid, started_at) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?)", (persona, trigger, data_cutoff, new_examples, os.getpid(), utcnow()))
    await db.commit()
    return cur.lastrowid


async def finish_run(db: aiosqlite.Connection, run_id: int, *, status: str, reason: str | None, notice: str | None = None,
                     dataset_version: str | None = None, model_version: str | None = None, report: dict | None = None) -> None:
    await db.execute(
        "UPDATE training_runs SET status = ?, reason = ?, notice = ?, dataset_version = COALESCE(?, dataset_version), "
        "model_version = COALESCE(?, model_version), report = ?, finished_at = ? WHERE id = ?",
        (status, reason, notice, dataset_version, model_version, json.dumps(report or {}, default=str), utcnow(), run_id))
    await db.commit()


async def update_run(db: aiosqlite.Connection, run_id: int, *, dataset_version: str | None = None,
                     model_version: str | None = None) -> None:
    await db.execute("UPDATE training_runs SET dataset_version = COALESCE(?, dataset_version), "
                     "model_version = COALESCE(?, model_version) WHERE id = ?", (dataset_version, model_version, run_id))
    await db.commit()


async def get_run(db: aiosqlite.Connection, run_id: int) -> TrainingRun | None:
    async with db.execute(f"SELECT {_COLUMNS} FROM training_runs WHERE id = ?", (run_id,)) as cur:
        row = await cur.fetchone()
    return _run(row) if row else None


async def list_runs(db: aiosqlite.Connection, persona: str | None = None, limit: int = 20) -> list[TrainingRun]:
    sql, args = f"SELECT {_COLUMNS} FROM training_runs", []
    if persona:
        sql += " WHERE persona = ?"
        args.append(persona)
    async with db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)) as cur:
        return [_run(r) for r in await cur.fetchall()]
