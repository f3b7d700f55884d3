"""The one write path for conversation content.

`log_exchange` is the only function that stores what a member said and what a persona replied. The
consent check lives inside it, so no caller can forget it: for a member who has not opted in it
returns None and writes nothing, not even a member row.
"""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.store.consent import OPTED_IN
from bot.store.db import transaction, utcnow


@dataclass(frozen=True)
class LoggedExchange:
    conversation_id: int
    user_message_id: int
    reply_message_id: int


# One statement (see migrations/0016_exchange_log.sql): the view's trigger checks consent and writes
# the conversation, the member turn and the reply. RETURNING reads back what it stored: under the
# statement's write lock the newest reply of the conversation is this one. `stored` is false (and
# the ids meaningless) when the member has not opted in: then the trigger wrote nothing.
_LOG = ("INSERT INTO exchange_log(persona, conversation_key, user_id, user_content, reply_content, model, "
        "user_external_id, reply_external_id, guild_id, error, created_at) "
        "VALUES (:persona, :key, :user_id, :user_content, :reply_content, :model, :user_external_id, "
        ":reply_external_id, :guild_id, :error, :now) "
        "RETURNING EXISTS (SELECT 1 FROM consent WHERE user_id = :user_id AND status = :opted_in) AS stored, "
        "(SELECT id FROM conversations WHERE persona = :persona AND key = :key) AS conversation_id, "
        "(SELECT reply_to FROM messages WHERE conversation_id = (SELECT id FROM conversations WHERE persona = :persona "
        "AND key = :key) AND role = 'assistant' ORDER BY id DESC LIMIT 1) AS user_message_id, "
        "(SELECT id FROM messages WHERE conversation_id = (SELECT id FROM conversations WHERE persona = :persona "
        "AND key = :key) AND role = 'assistant' ORDER BY id DESC LIMIT 1) AS reply_message_id")


async def log_exchange(
    db: aiosqlite.Connection,
    *,
    persona: str,
    conversation_key: str,
    user_id: str,
    user_content: str,
    reply_content: str,
    model: str | None = None,
    user_external_id: str | None = None,
    reply_external_id: str | None = None,
    guild_id: str | None = None,
    error: str | None = None,
) -> LoggedExchange | None:
    """Store one member turn and the persona's reply, if and only if the member opted in.

    The consent check and the writes are one SQL statement (the `exchange_log` trigger), so an
    opt-out recorded before this call is always seen, and an exchange is stored whole or not at
    all. Inside `transaction` no other write on the connection comes between it and its commit.
    `guild_id` (the Discord guild, None for DMs and the terminal) keeps one guild's replies out of
    another guild's curation queue; `error` is the backend error type when the reply is one (a
    curation signal).
    """
    # This runs once per reply, so it costs two round trips to aiosqlite's thread (the statement
    # and the commit): each hop hands the GIL over and back, which is most of what logging costs.
    params = {"persona": persona, "key": conversation_key, "user_id": user_id, "user_content": user_content,
              "reply_content": reply_content, "model": model, "user_external_id": user_external_id,
              "reply_external_id": reply_external_id, "guild_id": guild_id, "error": error, "now": utcnow(),
              "opted_in": OPTED_IN}
    async with transaction(db, immediate=False):
        ((stored, conversation_id, user_message_id, reply_message_id),) = await db.execute_fetchall(_LOG, params)
    if not stored:
        return None
    return LoggedExchange(conversation_id, user_message_id, reply_message_id)


async def set_reply_external_id(db: aiosqlite.Connection, reply_message_id: int, external_id: str) -> None:
    """Attach the Discord message id once the reply has been sent (for reactions and curation)."""
    async with transaction(db):
        await db.execute("UPDATE messages SET external_id = ? WHERE id = ?", (external_id, reply_message_id))


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    async with db.execute(
        "SELECT m.id, c.persona, c.key AS conversation, m.role, m.content, m.corrected_content, m.model, "
        "m.external_id, m.created_at, m.curation_status FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE m.author_id = ? ORDER BY m.id",
        (user_id,),
    ) as cur:
        rows = [dict(r) for r in await cur.fetchall()]
    return {"messages": rows}


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    """Delete the member's turns and the replies to them; then drop conversations left empty."""
    # Count first: replies go by cascade with their member turn, and SQLite doesn't count cascades.
    async with db.execute("SELECT COUNT(*) FROM messages WHERE author_id = ?", (user_id,)) as cur:
        (deleted,) = await cur.fetchone()
    await db.execute("DELETE FROM messages WHERE author_id = ?", (user_id,))
    await db.execute("DELETE FROM conversations WHERE id NOT IN (SELECT DISTINCT conversation_id FROM messages)")
    return deleted
