"""log_exchange: one statement stores the turn and the reply of an opted-in member, and says which rows."""
import asyncio

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
