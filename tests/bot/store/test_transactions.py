"""`transaction`: writers on the shared connection never commit each other's halves; forget is atomic.

The crash tests close the real connection between two statements of `forget_user` (as a killed
process would leave it) and reopen the SQLite file: the member's data is either all there or all
gone, the hook's marks included.
"""
from __future__ import annotations

import asyncio

import pytest

from bot.store import consent, exchanges, feedback, open_db, privacy
from bot.store.db import transaction


async def _seed(db):
    await consent.set_consent(db, "u1", True, "1")
    await consent.set_consent(db, "u2", True, "1")
    for user, text in (("u1", "mine"), ("u1", "mine too"), ("u2", "theirs")):
        await exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id=user, user_content=text,
                                     reply_content="ok", reply_external_id=f"r-{text}")
    await feedback.record_feedback(db, user_id="u1", reply_external_id="r-mine", value=1)


async def _counts(path) -> dict:
    async with open_db(path, upgrade=False) as db:
        out = {}
        for table, where in (("messages", "author_id = 'u1'"), ("members", "user_id = 'u1'"),
                             ("feedback", "user_id = 'u1'"), ("consent", "user_id = 'u1'"),
                             ("registry_events", "event = 'forget-hook'")):
            async with db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}") as cur:
                out[table] = (await cur.fetchone())[0]
        return out


async def _marking_hook(db, user_id):
    # Stands in for the trainer's hook (which marks datasets stale, models tainted): a write that
    # must commit together with the deletions.
    async with transaction(db):
        await db.execute("INSERT INTO registry_events(persona, version, event, detail, at) VALUES ('tim', NULL, 'forget-hook', ?, 'now')",
                         (user_id,))


@pytest.mark.parametrize("crash_after", ["hook", "bot.store.feedback", "bot.store.exchanges", "bot.store.channels"])
async def test_connection_closed_mid_forget_leaves_everything(settings, monkeypatch, crash_after):
    path = settings.core.db_path
    async with open_db(path) as db:
        await _seed(db)
    before = await _counts(path)
    assert before == {"messages": 4, "members": 1, "feedback": 1, "consent": 1, "registry_events": 0}

    db = await open_db(path).__aenter__()   # closed by the crash below
    hooks = [_marking_hook]
    if crash_after == "hook":
        async def crash_hook(conn, user_id):
            await conn.close()
        hooks.append(crash_hook)
    else:
        import importlib
        module = importlib.import_module(crash_after)
        original = module.delete_user

        async def delete_then_crash(conn, user_id):
            n = await original(conn, user_id)
            await conn.close()       # the process dies between two statements of the forget
            return n
        monkeypatch.setattr(module, "delete_user", delete_then_crash)
    with pytest.raises(Exception):
        await privacy.forget_user(db, "u1", hooks=hooks)
    assert await _counts(path) == before, "a forget cut short must leave everything in place"


async def test_completed_forget_removes_everything_with_the_hooks_marks(settings):
    path = settings.core.db_path
    async with open_db(path) as db:
        await _seed(db)
        await privacy.forget_user(db, "u1", hooks=[_marking_hook])
    assert await _counts(path) == {"messages": 0, "members": 0, "feedback": 0, "consent": 0, "registry_events": 1}


async def test_a_concurrent_commit_cannot_persist_half_a_forget(settings):
    """While a forget waits between statements, another coroutine's write commits only itself."""
    path = settings.core.db_path
    async with open_db(path) as db:
        await _seed(db)
        hook_entered, release = asyncio.Event(), asyncio.Event()

        async def slow_hook(conn, user_id):
            hook_entered.set()
            await release.wait()
            raise RuntimeError("the forget fails after another writer ran")

        forget = asyncio.create_task(privacy.forget_user(db, "u1", hooks=[slow_hook]))
        await hook_entered.wait()
        # Another member opts out meanwhile: its write waits for the forget's transaction.
        opt_out = asyncio.create_task(consent.set_consent(db, "u2", False, "1"))
        await asyncio.sleep(0.05)
        assert not opt_out.done(), "a writer must wait for the open transaction"
        release.set()
        with pytest.raises(RuntimeError):
            await forget
        await opt_out
    counts = await _counts(path)
    assert counts["messages"] == 4 and counts["members"] == 1
    async with open_db(path, upgrade=False) as db:
        assert (await consent.get_consent(db, "u2")).status == consent.OPTED_OUT


async def test_nested_transaction_joins_the_outer_one(db):
    with pytest.raises(ZeroDivisionError):
        async with transaction(db):
            async with transaction(db):
                await db.execute("INSERT INTO members(user_id, display_name, created_at) VALUES ('n1', NULL, 'now')")
            1 / 0
    async with db.execute("SELECT COUNT(*) FROM members WHERE user_id = 'n1'") as cur:
        assert (await cur.fetchone())[0] == 0, "the inner block must not commit on its own"
