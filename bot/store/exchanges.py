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


_CONSENTED = "SELECT 1 FROM consent WHERE user_id = ? AND status = ?"
# Upsert that always returns the id (a no-op update makes RETURNING fire on conflict too).
_CONVERSATION = ("INSERT INTO conversations(persona, key, started_at, guild_id) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT(persona, key) DO UPDATE SET guild_id = COALESCE(conversations.guild_id, excluded.guild_id) "
                 "RETURNING id")
_USER_TURN = ("INSERT INTO messages(conversation_id, role, author_id, external_id, content, created_at) "
              "VALUES (?, 'user', ?, ?, ?, ?)")
_REPLY = ("INSERT INTO messages(conversation_id, role, author_id, external_id, content, model, reply_to, created_at, error) "
          "VALUES (?, 'assistant', ?, ?, ?, ?, ?, ?, ?)")


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

    The consent check and the writes are one transaction: no other write on the connection can
    come between them, so an opt-out recorded before this call is always seen, and an exchange is
    stored whole or not at all. `guild_id` (the Discord guild, None for DMs and the terminal) keeps
    one guild's replies out of another guild's curation queue; `error` is the backend error type
    when the reply is one (a curation signal).
    """
    # Deferred: SQLite's write lock is taken by the first insert, so a member who has not opted in
    # costs one read and no write transaction. One aiosqlite call per statement.
    async with transaction(db, immediate=False):
        if not await db.execute_fetchall(_CONSENTED, (user_id, OPTED_IN)):
            return None
        now = utcnow()
        ((conversation_id,),) = await db.execute_fetchall(_CONVERSATION, (persona, conversation_key, now, guild_id))
        (user_message_id,) = await db.execute_insert(_USER_TURN, (conversation_id, user_id, user_external_id, user_content, now))
        (reply_message_id,) = await db.execute_insert(
            _REPLY, (conversation_id, user_id, reply_external_id, reply_content, model, user_message_id, now, error))
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
