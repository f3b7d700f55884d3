"""log_exchange: one statement stores the turn and the reply of an opted-in member, and says which rows."""
import asyncio

import pytest

from bot.store import consent, exchanges


async def test_returned_ids_are_the_rows_stored_even_when_conversations_interleave(db):
    for user in ("u1", "u2"):
        await consent.set_consent(db, user, True, "1")
    logged = await asyncio.gather(*(
        exchanges.log_exchange(db, persona="tim", conversation_key=f"discord:{user}", user_id=user,
                               user_content=f"q{i} from {user}", reply_content=f"a{i} to {user}", model="m",
                               user_external_id=f"in-{user}-{i}", reply_external_id=f"out-{user}-{i}", guild_id="g")
        for i in range(5) for user in ("u1", "u2", "stranger")))
    stored = [x for x in logged if x is not None]
    assert len(stored) == 10 and logged[2] is None   # the stranger never opted in: nothing, not even a conversation
    for x in stored:
        rows = await db.execute_fetchall(
            "SELECT m.id, m.role, m.content, m.reply_to, m.conversation_id, c.key, c.guild_id FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE m.id IN (?, ?) ORDER BY m.id",
            (x.user_message_id, x.reply_message_id))
        (uid, urole, question, _, uconv, key, guild), (rid, rrole, answer, reply_to, rconv, _, _) = rows
        user = key.split(":")[1]
        assert (urole, rrole) == ("user", "assistant") and reply_to == uid
        assert uconv == rconv == x.conversation_id and guild == "g"
        assert question.endswith(f"from {user}") and answer.replace("a", "q", 1).replace("to", "from") == question
    keys = await db.execute_fetchall("SELECT key FROM conversations ORDER BY key")
    assert [k for (k,) in keys] == ["discord:u1", "discord:u2"]


async def test_a_guild_learned_later_fills_in_but_never_moves_a_conversation(db):
    await consent.set_consent(db, "u1", True, "1")
    first = await exchanges.log_exchange(db, persona="tim", conversation_key="discord:9", user_id="u1",
                                         user_content="q", reply_content="a")
    second = await exchanges.log_exchange(db, persona="tim", conversation_key="discord:9", user_id="u1",
                                          user_content="q", reply_content="a", guild_id="g1")
    third = await exchanges.log_exchange(db, persona="tim", conversation_key="discord:9", user_id="u1",
                                         user_content="q", reply_content="a", guild_id="g2")
    assert first.conversation_id == second.conversation_id == third.conversation_id
    assert [tuple(r) for r in await db.execute_fetchall("SELECT guild_id FROM conversations")] == [("g1",)]


async def test_exchanges_logged_together_share_one_statement(db):
    await consent.set_consent(db, "u1", True, "1")
    statements = []
    await db.set_trace_callback(statements.append)
    logged = await asyncio.gather(*(
        exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id="u1",
                               user_content=f"q{i}", reply_content=f"a{i}") for i in range(20)))
    await db.set_trace_callback(None)
    # One transaction a write (the trace repeats a statement for each step of its trigger).
    writes = [s for s in statements if s.strip() == "BEGIN"]
    assert 1 <= len(writes) <= 2   # the first alone (or not), then everyone who arrived meanwhile
    rows = await db.execute_fetchall("SELECT id, content, reply_to FROM messages ORDER BY id")
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    for i, x in enumerate(logged):
        assert by_id[x.user_message_id] == (f"q{i}", None)
        assert by_id[x.reply_message_id] == (f"a{i}", x.user_message_id)


async def test_one_bad_exchange_fails_alone(db):
    await consent.set_consent(db, "u1", True, "1")
    calls = [exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id="u1",
                                    user_content=None if i == 3 else f"q{i}", reply_content=f"a{i}") for i in range(6)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[3], Exception) and "NOT NULL" in str(results[3])
    assert all(r is not None and not isinstance(r, Exception) for i, r in enumerate(results) if i != 3)
    contents = [r[0] for r in await db.execute_fetchall("SELECT content FROM messages WHERE role = 'user' ORDER BY id")]
    assert contents == ["q0", "q1", "q2", "q4", "q5"]


async def test_inside_a_transaction_the_exchange_joins_it(db):
    from bot.store.db import transaction

    await consent.set_consent(db, "u1", True, "1")
    try:
        async with transaction(db):
            assert await exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id="u1",
                                                user_content="q", reply_content="a") is not None
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert (await db.execute_fetchall("SELECT COUNT(*) FROM messages"))[0][0] == 0


@pytest.mark.parametrize("steps", [1, 3])   # before the writer ran / while it writes
async def test_a_cancelled_writer_leaves_no_caller_waiting(db, steps):
    await consent.set_consent(db, "u1", True, "1")
    calls = [asyncio.ensure_future(exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id="u1",
                                                          user_content=f"q{i}", reply_content="a")) for i in range(3)]
    for _ in range(steps):
        await asyncio.sleep(0)
    exchanges._WRITERS[db].task.cancel()         # shutdown cancels the writer
    done, pending = await asyncio.wait(calls, timeout=5)
    assert not pending and all(c.cancelled() for c in calls)
