"""`personabot db backup|restore`: consistent online copies while writes go on; restore refuses a live database."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from bot.store.backup import hold_database, lock_path
from bot.store.db import latest_version


def _cli(settings, *args):
    return CliRunner().invoke(app, ["--data-dir", str(settings.core.data_dir), "db", *args])


def _prepare(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript("""
        CREATE TABLE ledger_a(id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
        CREATE TABLE ledger_b(id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL);
        INSERT INTO members(user_id, display_name, created_at) VALUES ('42', 'Ana', 'now');
    """)
    conn.commit()
    conn.close()


class Writer(threading.Thread):
    """Commits transactions that each add one row to both ledgers: a copy holds both or neither."""

    def __init__(self, db_path: Path):
        super().__init__(daemon=True)
        self.db_path = db_path
        self.stop = threading.Event()
        self.committed = 0
        self.error: BaseException | None = None

    def run(self):
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        try:
            while not self.stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute("INSERT INTO ledger_a(payload) VALUES (?)", ("x" * 2000,))
                conn.execute("INSERT INTO ledger_b(a_id) VALUES (?)", (cur.lastrowid,))
                conn.execute("COMMIT")
                self.committed += 1
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            conn.close()


def _check_copy(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "the copy is one self-contained file"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()
        a = {r[0] for r in conn.execute("SELECT id FROM ledger_a")}
        b = {r[0] for r in conn.execute("SELECT a_id FROM ledger_b")}
        assert a == b, "a transaction was copied in half"
        assert conn.execute("SELECT display_name FROM members WHERE user_id='42'").fetchone()[0] == "Ana"
        return len(a)
    finally:
        conn.close()


async def test_backup_while_writing_gives_consistent_copies(settings, db, tmp_path):
    db_path = settings.core.db_path
    _prepare(db_path)
    writer = Writer(db_path)
    writer.start()
    try:
        while writer.committed < 50:
            time.sleep(0.01)
        counts = []
        with hold_database(db_path):  # as the running bot does: backup must not care
            for i in range(4):
                result = _cli(settings, "backup", str(tmp_path / "backups" / f"copy-{i}.db"))
                assert result.exit_code == 0, result.output
                assert "integrity ok" in result.output
                counts.append(_check_copy(tmp_path / "backups" / f"copy-{i}.db"))
                time.sleep(0.05)
    finally:
        writer.stop.set()
        writer.join(10)
    assert writer.error is None, writer.error
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0, counts  # the writes went on during the backups
    assert not list((tmp_path / "backups").glob(".*partial")), "no temporary file left behind"


async def test_backup_into_a_folder_and_json(settings, db, tmp_path):
    folder = tmp_path / "nightly"
    folder.mkdir()
    result = _cli(settings, "backup", str(folder), "--json")
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    made = Path(report["destination"])
    assert made.parent == folder and made.name.startswith("personabot-") and made.is_file()
    assert report["schema_version"] == latest_version()
    # A folder that does not exist yet, named with a trailing slash (the nightly cron example).
    result = _cli(settings, "backup", str(tmp_path / "new-folder") + "/")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "new-folder").glob("personabot-*.db"))) == 1


def test_backup_without_a_database_says_so(settings, tmp_path):
    result = _cli(settings, "backup", str(tmp_path / "x.db"))
    assert result.exit_code == 1
    assert "no database at" in result.output and str(settings.core.db_path) in result.output.replace("\n", "")


def _holder(db_path: Path) -> subprocess.Popen:
    """A separate process that holds the database as `personabot run` does."""
    code = ("import sys, time; from bot.store.backup import hold_database\n"
            "with hold_database(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db_path)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[3])
    assert proc.stdout.readline().strip() == "held"
    return proc


async def test_restore_refuses_while_a_bot_holds_the_database_then_restores(settings, db, tmp_path):
    db_path = settings.core.db_path
    _prepare(db_path)
    backup = tmp_path / "before.db"
    assert _cli(settings, "backup", str(backup)).exit_code == 0
    # Changes after the backup, which the restore must undo.
    await db.execute("INSERT INTO members(user_id, display_name, created_at) VALUES ('43', 'Bo', 'now')")
    await db.commit()
    await db.close()

    holder = _holder(db_path)
    try:
        result = _cli(settings, "restore", str(backup))
        assert result.exit_code == 1
        assert "in use by a running bot or trainer" in result.output.replace("\n", " ")
    finally:
        holder.kill()
        holder.wait()
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM members WHERE user_id='43'").fetchone()[0] == 1, "refused means untouched"
    conn.close()

    result = _cli(settings, "restore", str(backup))  # the holder died: the kernel dropped its lock
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in conn.execute("SELECT user_id FROM members ORDER BY user_id")] == ["42"]
    finally:
        conn.close()
    saved = list(db_path.parent.glob("personabot.db.before-restore-*"))
    assert len(saved) == 1
    conn = sqlite3.connect(saved[0])
    assert conn.execute("SELECT count(*) FROM members").fetchone()[0] == 2, "the replaced database is kept"
    conn.close()


async def test_restore_rejects_a_file_that_is_not_a_database(settings, db, tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"not a database at all" * 100)
    result = _cli(settings, "restore", str(bogus))
    assert result.exit_code == 1
    assert "bogus.db" in result.output and "not a usable SQLite database" in result.output.replace("\n", " ")
    async with db.execute("SELECT count(*) FROM sqlite_master") as cur:
        assert (await cur.fetchone())[0] > 0, "the live database is untouched"
    assert lock_path(settings.core.db_path).is_file()


def test_restore_of_a_missing_file(settings, tmp_path):
    result = _cli(settings, "restore", str(tmp_path / "nope.db"))
    assert result.exit_code == 1 and "no backup file" in result.output
