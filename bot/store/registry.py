"""The model registry: versioned fine-tunes per persona.

Lives in the store (not the trainer) because both sides need it: the trainer creates versions and
promotes them; the serving side reads the active version per persona to route requests (and
re-registers vLLM adapters at start-up). Names are immutable (`tim-v3`): a new training run is a
new version, never an overwrite, because vLLM may serve stale state for a reused adapter name.
Exactly one version per persona is `active` at a time (enforced in `set_active`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import aiosqlite

from bot.store.db import transaction, utcnow

STATUSES = ("training", "candidate", "active", "retired", "failed")


@dataclass(frozen=True)
class ModelVersion:
    id: int
    persona: str
    version: int
    name: str
    backend: str
    base_model: str
    adapter_path: str | None
    remote_model: str | None
    dataset_version: str | None
    hyperparams: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    status: str = "training"
    status_reason: str | None = None
    tainted: bool = False
    tainted_reason: str | None = None
    created_at: str = ""
    promoted_at: str | None = None

    @property
    def served_model(self) -> str:
        """What a backend is asked for: the adapter name (vLLM/local) or the remote model id (OpenAI)."""
        return self.remote_model if self.backend == "openai" and self.remote_model else self.name


_COLUMNS = ("id, persona, version, name, backend, base_model, adapter_path, remote_model, dataset_version, "
            "hyperparams, metrics, status, status_reason, tainted, tainted_reason, created_at, promoted_at")


def _row(row) -> ModelVersion:
    d = dict(row)
    d["hyperparams"] = json.loads(d["hyperparams"] or "{}")
    d["metrics"] = json.loads(d["metrics"] or "{}")
    d["tainted"] = bool(d["tainted"])
    return ModelVersion(**d)


async def _event(db: aiosqlite.Connection, persona: str, version: str | None, event: str, detail: str | None = None) -> None:
    await db.execute("INSERT INTO registry_events(persona, version, event, detail, at) VALUES (?, ?, ?, ?, ?)",
                     (persona, version, event, detail, utcnow()))


async def create_version(
    db: aiosqlite.Connection, *, persona: str, backend: str, base_model: str, dataset_version: str | None,
    hyperparams: dict | None = None, adapter_path: str | None = None, remote_model: str | None = None,
    status: str = "training",
) -> ModelVersion:
    """Allocate the next immutable version name for the persona (tim-v1, tim-v2, …)."""
    async with db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE persona = ?", (persona,)) as cur:
        (number,) = await cur.fetchone()
    name = f"{persona}-v{number}"
    await db.execute(
        "INSERT INTO model_versions(persona, version, name, backend, base_model, adapter_path, remote_model, "
        "dataset_version, hyperparams, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (persona, number, name, backend, base_model, adapter_path, remote_model, dataset_version,
         json.dumps(hyperparams or {}), status, utcnow()),
    )
    await _event(db, persona, name, "created")
    await db.commit()
    return await get_version(db, name)


async def get_version(db: aiosqlite.Connection, name: str) -> ModelVersion | None:
    async with db.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE name = ?", (name,)) as cur:
        row = await cur.fetchone()
    return _row(row) if row else None


async def list_versions(db: aiosqlite.Connection, persona: str | None = None) -> list[ModelVersion]:
    sql, args = f"SELECT {_COLUMNS} FROM model_versions", ()
    if persona:
        sql, args = sql + " WHERE persona = ?", (persona,)
    async with db.execute(sql + " ORDER BY persona, version", args) as cur:
        return [_row(r) for r in await cur.fetchall()]


async def active_version(db: aiosqlite.Connection, persona: str) -> ModelVersion | None:
    async with db.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE persona = ? AND status = 'active'", (persona,)) as cur:
        row = await cur.fetchone()
    return _row(row) if row else None


async def active_versions(db: aiosqlite.Connection) -> dict[str, ModelVersion]:
    async with db.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE status = 'active'") as cur:
        return {v.persona: v for v in map(_row, await cur.fetchall())}


async def update_version(db: aiosqlite.Connection, name: str, *, status: str | None = None, reason: str | None = None,
                         metrics: dict | None = None, adapter_path: str | None = None,
                         remote_model: str | None = None) -> None:
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    sets, args = [], []
    if status is not None:
        sets += ["status = ?", "status_reason = ?"]
        args += [status, reason]
    if metrics is not None:
        sets.append("metrics = ?")
        args.append(json.dumps(metrics))
    if adapter_path is not None:
        sets.append("adapter_path = ?")
        args.append(adapter_path)
    if remote_model is not None:
        sets.append("remote_model = ?")
        args.append(remote_model)
    if not sets:
        return
    await db.execute(f"UPDATE model_versions SET {', '.join(sets)} WHERE name = ?", (*args, name))
    await db.commit()


async def set_active(db: aiosqlite.Connection, name: str, *, event: str = "promoted", detail: str | None = None) -> ModelVersion:
    """Make `name` the persona's active version; the previous active one becomes retired. Atomic."""
    version = await get_version(db, name)
    if version is None:
        raise KeyError(f"no model version named {name!r}")
    async with transaction(db):
        await db.execute("UPDATE model_versions SET status = 'retired' WHERE persona = ? AND status = 'active' AND name != ?",
                         (version.persona, name))
        await db.execute("UPDATE model_versions SET status = 'active', status_reason = NULL, promoted_at = ? WHERE name = ?",
                         (utcnow(), name))
        await _event(db, version.persona, name, event, detail)
    return await get_version(db, name)


async def mark_tainted(db: aiosqlite.Connection, name: str, reason: str) -> None:
    version = await get_version(db, name)
    async with transaction(db):   # joins forget_user's transaction when called from its hook
        await db.execute("UPDATE model_versions SET tainted = 1, tainted_reason = ? WHERE name = ?", (reason, name))
        if version is not None:
            await _event(db, version.persona, name, "tainted", reason)


async def record_metrics(db: aiosqlite.Connection, version_id: int, *, step: int, epoch: float | None = None,
                         loss: float | None = None, val_loss: float | None = None,
                         tokens_per_s: float | None = None) -> None:
    await db.execute(
        "INSERT INTO training_metrics(version_id, step, epoch, loss, val_loss, tokens_per_s, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (version_id, step, epoch, loss, val_loss, tokens_per_s, utcnow()),
    )
    await db.commit()


async def events(db: aiosqlite.Connection, persona: str) -> list[dict]:
    async with db.execute("SELECT version, event, detail, at FROM registry_events WHERE persona = ? ORDER BY id", (persona,)) as cur:
        return [dict(r) for r in await cur.fetchall()]


# -- additions for promotion, rollback and forget propagation (trainer/promote.py, trainer/forget.py) --


async def deactivate(db: aiosqlite.Connection, persona: str, *, event: str = "rolled_back",
                     detail: str | None = None) -> ModelVersion | None:
    """Retire the persona's active version so the spec's own model answers again. Returns what was active."""
    current = await active_version(db, persona)
    if current is None:
        return None
    await db.execute("UPDATE model_versions SET status = 'retired' WHERE name = ?", (current.name,))
    await _event(db, persona, current.name, event, detail)
    await db.commit()
    return await get_version(db, current.name)


async def record_event(db: aiosqlite.Connection, persona: str, version: str | None, event: str,
                       detail: str | None = None) -> None:
    """Append an audit event (evaluated, rejected, unloaded, …) to the persona's registry history."""
    await _event(db, persona, version, event, detail)
    await db.commit()


async def versions_trained_on(db: aiosqlite.Connection, dataset_versions: list[str]) -> list[ModelVersion]:
    """Every model version whose dataset_version is one of these."""
    if not dataset_versions:
        return []
    marks = ", ".join("?" for _ in dataset_versions)
    async with db.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE dataset_version IN ({marks}) "
                          "ORDER BY persona, version", tuple(dataset_versions)) as cur:
        return [_row(r) for r in await cur.fetchall()]


async def promotion_history(db: aiosqlite.Connection, persona: str) -> list[ModelVersion]:
    """Versions that have ever served, most recently promoted first (the rollback order)."""
    async with db.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE persona = ? AND promoted_at IS NOT NULL "
                          "ORDER BY promoted_at DESC, version DESC", (persona,)) as cur:
        return [_row(r) for r in await cur.fetchall()]


async def promoted_by(db: aiosqlite.Connection, persona: str | None = None) -> dict[str, str]:
    """Who promoted each version last ('by <who>' in the promotion event), by version name."""
    sql, args = "SELECT version, detail FROM registry_events WHERE event = 'promoted'", ()
    if persona:
        sql, args = sql + " AND persona = ?", (persona,)
    found: dict[str, str] = {}
    async with db.execute(sql + " ORDER BY id", args) as cur:
        for version, detail in await cur.fetchall():
            who = next((part[3:] for part in (detail or "").split("; ") if part.startswith("by ")), None)
            found[version] = who or "unknown"
    return found
