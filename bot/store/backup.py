"""Online backup and restore of the SQLite database, and the lock that says a process is using it.

Contract:

- `hold_database(db_path)`: every long-running process that opens the database (`personabot run`,
  `personabot trainer`) holds a *shared* `fcntl.flock` on `<data_dir>/locks/<db name>.lock` for its
  whole life. The kernel drops a flock when its process dies, however it dies, so a crashed bot
  never leaves the database marked as in use.
- `backup_database(db_path, dest)` copies with SQLite's online backup API in one step, which reads
  one consistent snapshot: in WAL mode writers go on meanwhile, and the copy holds every committed
  transaction up to the snapshot and nothing of a later or unfinished one. The copy is written to a
  temporary file beside `dest`, switched out of WAL mode (one self-contained file), checked with
  `PRAGMA integrity_check`, and only then renamed onto `dest`.
- `restore_database(backup, db_path)` refuses (`DatabaseInUse`) unless it can take the lock
  *exclusively*, i.e. no bot or trainer holds it, and keeps that lock while it works. The backup is
  checked first (a SQLite file, integrity ok, a schema this code knows); the current database is
  saved beside itself as `<name>.before-restore-<time>` before the backup's pages replace it.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message names the file and the reason."""


class DatabaseInUse(BackupError):
    """A bot or trainer has the database open."""


@dataclass(frozen=True)
class BackupReport:
    source: str
    destination: str
    bytes: int
    schema_version: int
    saved_previous: str | None = None


def lock_path(db_path: Path) -> Path:
    db_path = Path(db_path)
    return db_path.parent / "locks" / f"{db_path.name}.lock"


@contextmanager
def hold_database(db_path: Path) -> Iterator[None]:
    """Mark the database as in use by this process until the block ends (a shared lock)."""
    fd = _open_lock(db_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def backup_database(db_path: Path, dest: Path | str) -> BackupReport:
    """`dest` is a file, or a folder (existing, or named with a trailing `/`) for a timestamped file."""
    folder = str(dest).endswith(("/", os.sep))
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}: nothing to back up (is PERSONABOT_DATA_DIR right?)")
    if folder or dest.is_dir():
        dest = dest / f"personabot-{_stamp()}.db"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(db_path, timeout=30)
        try:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target)  # pages=-1: the whole database from one read snapshot
                target.execute("PRAGMA journal_mode=DELETE")
                version = _check(target, tmp)
            finally:
                target.close()
        finally:
            source.close()
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        raise BackupError(f"backing up {db_path} to {dest} failed: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return BackupReport(str(db_path), str(dest), dest.stat().st_size, version)


def restore_database(backup: Path, db_path: Path) -> BackupReport:
    from bot.store.db import latest_version

    backup, db_path = Path(backup), Path(db_path)
    if not backup.is_file():
        raise BackupError(f"no backup file at {backup}")
    fd = _open_lock(db_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(
                f"{db_path} is in use by a running bot or trainer: stop them first "
                "(docker compose stop bot trainer), then restore"
            ) from None
        try:
            source = sqlite3.connect(backup, timeout=30)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot open {backup}: {exc}") from None
        try:
            version = _check(source, backup)
            if version > latest_version():
                raise BackupError(f"{backup} has schema {version}, newer than this personabot knows "
                                  f"({latest_version()}): upgrade personabot first")
            saved = None
            if db_path.is_file():
                saved = db_path.with_name(f"{db_path.name}.before-restore-{_stamp()}")
                backup_database(db_path, saved)
            db_path.parent.mkdir(parents=True, exist_ok=True)
            target = sqlite3.connect(db_path)
            try:
                # The backup API writes through SQLite, so the live file's WAL is handled correctly.
                source.backup(target)
                target.execute("PRAGMA journal_mode=WAL")
                _check(target, db_path)
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise BackupError(f"restoring {backup} into {db_path} failed: {exc}") from None
        finally:
            source.close()
    finally:
        os.close(fd)
    return BackupReport(str(backup), str(db_path), db_path.stat().st_size, version, str(saved) if saved else None)


def _check(conn: sqlite3.Connection, path: Path) -> int:
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a usable SQLite database: {exc}") from None
    if rows != ["ok"]:
        raise BackupError(f"{path} failed PRAGMA integrity_check: {'; '.join(rows[:5])}")
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _open_lock(db_path: Path) -> int:
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
