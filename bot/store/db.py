"""Connection and numbered migrations.

Migrations are `migrations/NNNN_topic.sql`, applied in number order inside one transaction each.
The applied version is kept in the database itself (`PRAGMA user_version`), so a file copied to
another machine knows its own schema. Numbers may skip (features reserve theirs) but never repeat.
"""
from __future__ import annotations

import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Callable, TypeVar

import aiosqlite

T = TypeVar("T")


class MigrationError(RuntimeError):
    """A migration file failed; the database is left at the last version that applied cleanly."""


_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def utcnow() -> str:
    """Timestamps are stored as ISO-8601 UTC strings."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every shipped migration, in order."""
    found = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration numbers in bot/store/migrations: {versions}")
    return found


def latest_version() -> int:
    migrations = available_migrations()
    return migrations[-1][0] if migrations else 0


async def current_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cur:
        (version,) = await cur.fetchone()
    return int(version)


async def migrate(db: aiosqlite.Connection, target: int | None = None) -> list[str]:
    """Apply every migration newer than the database's version (up to `target`). Returns the names applied."""
    applied = []
    have = await current_version(db)
    for version, name, sql in available_migrations():
        if version <= have or (target is not None and version > target):
            continue
        # executescript commits first, so wrap the file and the version bump in one explicit transaction.
        try:
            await db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
        except Exception as exc:
            await db.rollback()
            raise MigrationError(f"migration {name} failed and was rolled back (database stays at version {have}): {exc}") from exc
        have = version
        applied.append(name)
    return applied


async def run_on_connection(db: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(sqlite3_connection, *args)` on the connection's worker thread, as one queued call.

    Each aiosqlite statement is a hop to that thread and back; a write path of several statements
    done this way costs one hop, and no other statement on the connection runs in the middle of it.
    (aiosqlite has no public call for this; `_execute` and `_conn` are what its own methods use.)
    """
    return await db._execute(lambda: fn(db._conn, *args))


async def connect(path: Path | str) -> aiosqlite.Connection:
    """Open a connection with the pragmas every user of the store relies on."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(str(path))
    db.row_factory = aiosqlite.Row
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA busy_timeout=5000")
    return db


@asynccontextmanager
async def open_db(path: Path | str, *, upgrade: bool = True) -> AsyncIterator[aiosqlite.Connection]:
    """Open the database, migrate it to the latest schema (unless `upgrade=False`), close on exit."""
    db = await connect(path)
    try:
        if upgrade:
            await migrate(db)
        yield db
    finally:
        await db.close()
