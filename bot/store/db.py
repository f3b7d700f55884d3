"""Connection and numbered migrations.

Migrations are `migrations/NNNN_topic.sql`, applied in number order inside one transaction each.
The applied version is kept in the database itself (`PRAGMA user_version`), so a file copied to
another machine knows its own schema. Numbers may skip (features reserve theirs) but never repeat.

Every connection runs with `secure_delete` on, and forget paths call `purge_deleted(db)` after they
commit, so deleted words leave no trace in free pages or the WAL.

Writes go through `transaction(db)`: the bot shares one aiosqlite connection between all its
coroutines, and SQLite has one transaction per connection, so a write that commits while another
is half done would commit the other's half too. `transaction` serialises writers on a connection
with an `asyncio.Lock` around BEGIN … COMMIT (ROLLBACK on any exception), and a `transaction`
opened inside another (a forget hook inside `forget_user`) joins the outer one.
"""
from __future__ import annotations

import asyncio
import contextvars
import re
import weakref
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import AsyncIterator

import aiosqlite


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


# One writer lock per open connection (dropped with the connection), and the connections the
# current task is already inside a transaction on (for nesting).
_LOCKS: "weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock]" = weakref.WeakKeyDictionary()
_INSIDE: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("personabot_store_transactions", default=frozenset())


def inside_transaction(db: aiosqlite.Connection) -> bool:
    """Whether the current task is inside `transaction(db)` (its writes join that transaction)."""
    return id(db) in _INSIDE.get()


@asynccontextmanager
async def transaction(db: aiosqlite.Connection, *, immediate: bool = True) -> AsyncIterator[aiosqlite.Connection]:
    """`async with transaction(db):` the statements inside commit together or not at all.

    `immediate` takes SQLite's write lock at BEGIN, so another process (the trainer) writing at the
    same time makes this wait (busy_timeout) rather than fail half-way. Without it the transaction
    begins at the first write (sqlite3's implicit BEGIN), which saves a round trip on hot paths whose
    reads need no snapshot. Nested use joins the outer transaction: only the outermost commits or
    rolls back.
    """
    inside = _INSIDE.get()
    if id(db) in inside:
        yield db
        return
    lock = _LOCKS.get(db)
    if lock is None:
        lock = _LOCKS[db] = asyncio.Lock()
    async with lock:
        token = _INSIDE.set(inside | {id(db)})
        try:
            if immediate and not db.in_transaction:
                await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                try:
                    if db.in_transaction:
                        await db.rollback()
                except Exception:  # the connection itself is gone: SQLite rolled back with it
                    pass
                raise
            if db.in_transaction:   # nothing written (a read-only path): nothing to commit
                await db.commit()
        finally:
            _INSIDE.reset(token)


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
    # Deleted content is overwritten with zeros instead of lingering in free pages and the WAL: a
    # forgotten member's or a deleted twin's words must not be recoverable from the file.
    await db.execute("PRAGMA secure_delete=ON")
    return db


async def purge_deleted(db: aiosqlite.Connection) -> bool:
    """After a forget path commits: checkpoint the WAL into the database file and truncate it, so
    the pre-delete page images in the WAL are gone too (the zeroed pages reach the main file).

    Returns False when a reader elsewhere (another process's open read transaction) kept the
    checkpoint from completing; the WAL is then truncated by a later call or at close. Inside an
    open transaction it does nothing (the outermost caller purges after its commit)."""
    if db.in_transaction:
        return False
    async with db.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
        row = await cur.fetchone()
    return row is None or row[0] == 0


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
