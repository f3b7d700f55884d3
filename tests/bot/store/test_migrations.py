"""Numbered migrations: a blank database, and the upgrade from every earlier schema version."""
import pytest

from bot.store.db import available_migrations, connect, current_version, latest_version, migrate


async def schema(db):
    async with db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def test_blank_database_gets_latest_schema(tmp_path):
    db = await connect(tmp_path / "blank.db")
    try:
        applied = await migrate(db)
        assert applied == [name for _, name, _ in available_migrations()]
        assert await current_version(db) == latest_version()
        names = {name for _, name, _ in await schema(db)}
        assert {"members", "consent", "conversations", "messages", "feedback", "channel_bindings",
                "sources", "source_messages", "model_versions"} <= names
        async with db.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
        assert await migrate(db) == []  # idempotent
    finally:
        await db.close()


@pytest.mark.parametrize("start", [v for v, _, _ in available_migrations()][:-1])
async def test_upgrade_from_each_earlier_version_keeps_data(tmp_path, start):
    reference = await connect(tmp_path / "reference.db")
    await migrate(reference)
    expected = await schema(reference)
    await reference.close()

    db = await connect(tmp_path / f"from-{start}.db")
    try:
        await migrate(db, target=start)
        assert await current_version(db) == start
        # Data written under the old schema must survive the upgrade.
        await db.execute("INSERT INTO members(user_id, display_name, created_at) VALUES ('42', 'Ana', 'now')")
        await db.commit()
        applied = await migrate(db)
        assert applied and all(int(name[:4]) > start for name in applied)
        assert await current_version(db) == latest_version()
        assert await schema(db) == expected
        async with db.execute("SELECT display_name FROM members WHERE user_id = '42'") as cur:
            assert (await cur.fetchone())[0] == "Ana"
    finally:
        await db.close()


async def test_failed_migration_leaves_version_untouched(tmp_path, monkeypatch):
    import bot.store.db as dbmod

    good = available_migrations()
    broken = good + [(good[-1][0] + 1, "9999_broken.sql", "CREATE TABLE ok_table(x);\nTHIS IS NOT SQL;")]
    monkeypatch.setattr(dbmod, "available_migrations", lambda: broken)
    db = await connect(tmp_path / "broken.db")
    try:
        with pytest.raises(dbmod.MigrationError, match="9999_broken.sql"):
            await migrate(db)
        assert await current_version(db) == good[-1][0]
        async with db.execute("SELECT name FROM sqlite_master WHERE name = 'ok_table'") as cur:
            assert await cur.fetchone() is None  # the half-applied file was rolled back
    finally:
        await db.close()
