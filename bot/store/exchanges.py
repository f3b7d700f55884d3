"""The one write path for conversation content.

`log_exchange` is the only function that stores what a member said and what a persona replied. The
consent check lives inside it, so no caller can forget it: for a member who has not opted in it
returns None and writes nothing, not even a member row.
"""
from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass

import aiosqlite

from bot.store.consent import OPTED_IN
from bot.store.db import inside_transaction, transaction, utcnow


@dataclass(frozen=True)
class LoggedExchange:
    conversation_id: int
    user_message_id: int
    reply_message_id: int


_COLUMNS = ("ticket", "persona", "conversation_key", "user_id", "user_content", "reply_content", "model",
            "user_external_id", "reply_external_id", "guild_id", "error", "created_at")
# What the trigger stored for each row: under the statement's write lock, and evaluated right after
# the row's trigger ran, the newest reply of the row's conversation is the one just written.
# `stored` is false (and the ids meaningless) when the member has not opted in: nothing was written.
_CONVERSATION = "(SELECT id FROM conversations WHERE persona = exchange_log.persona AND key = exchange_log.conversation_key)"
_NEWEST_REPLY = f"FROM messages WHERE conversation_id = {_CONVERSATION} AND role = 'assistant' ORDER BY id DESC LIMIT 1"
_RETURNING = (f"RETURNING ticket, EXISTS (SELECT 1 FROM consent WHERE user_id = exchange_log.user_id AND status = '{OPTED_IN}'), "
              f"{_CONVERSATION}, (SELECT reply_to {_NEWEST_REPLY}), (SELECT id {_NEWEST_REPLY})")
_ROW = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
MAX_BATCH = 500   # rows per statement: 12 parameters each, far under SQLite's 32,766


@functools.lru_cache(maxsize=64)
def _statement(rows: int) -> str:
    return f"INSERT INTO exchange_log({', '.join(_COLUMNS)}) VALUES {', '.join([_ROW] * rows)} {_RETURNING}"


async def _write(db: aiosqlite.Connection, rows: list[tuple]) -> list[LoggedExchange | None]:
    """One statement and its commit for `rows` (each begins with its ticket: its index in `rows`)."""
    async with transaction(db, immediate=False):
        out = await db.execute_fetchall(_statement(len(rows)), [value for row in rows for value in row])
    logged: list[LoggedExchange | None] = [None] * len(rows)
    for ticket, stored, conversation_id, user_message_id, reply_message_id in out:
        if stored:
            logged[ticket] = LoggedExchange(conversation_id, user_message_id, reply_message_id)
    return logged


class _Writer:
    """The exchanges waiting to be written on one connection, and the task writing them.

    Replies finish concurrently (a busy server answers hundreds a second), and every statement sent
    to aiosqlite's thread costs two thread hops plus its commit's two, whatever it writes. So the
    exchanges that arrive while a write is under way go out together in the next one.
    """

    def __init__(self) -> None:
        self.waiting: list[tuple[tuple, asyncio.Future]] = []
        self.writing: list[tuple[tuple, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    def start(self, db: aiosqlite.Connection) -> None:
        task = asyncio.ensure_future(self._drain(db))
        self.task = task
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        if task.cancelled() and self.task is task:   # cancelled before it ran (shutdown)
            self.task = None
            self._cancel_all()

    def _cancel_all(self) -> None:
        """Nobody may wait on a write that will not happen."""
        for _, future in [*self.writing, *self.waiting]:
            if not future.done():
                future.cancel()
        self.writing, self.waiting = [], []

    async def _drain(self, db: aiosqlite.Connection) -> None:
        try:
            while self.waiting:
                await self._write_next(db)
        except asyncio.CancelledError:
            self._cancel_all()
            raise
        finally:
            self.task = None   # a caller arriving from now on starts the next writer

    async def _write_next(self, db: aiosqlite.Connection) -> None:
        self.writing, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
        batch = self.writing
        try:
            results = await _write(db, [(i, *row) for i, (row, _) in enumerate(batch)])
        except Exception as exc:
            if len(batch) == 1:
                results = [exc]
            else:   # one bad exchange must not cost the others theirs: write each alone
                results = []
                for row, _ in batch:
                    try:
                        results.append((await _write(db, [(0, *row)]))[0])
                    except Exception as one:
                        results.append(one)
        for (_, future), result in zip(batch, results):
            if future.done():   # the caller was cancelled; its exchange is stored anyway
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        self.writing = []


_WRITERS: "weakref.WeakKeyDictionary[aiosqlite.Connection, _Writer]" = weakref.WeakKeyDictionary()


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
    opt-out recorded before the write is always seen, and an exchange is stored whole or not at
    all. Exchanges logged at the same time on one connection share a statement (see `_Writer`);
    called inside `transaction(db)`, the exchange joins that transaction instead. `guild_id` (the
    Discord guild, None for DMs and the terminal) keeps one guild's replies out of another guild's
    curation queue; `error` is the backend error type when the reply is one (a curation signal).
    """
    row = (persona, conversation_key, user_id, user_content, reply_content, model, user_external_id,
           reply_external_id, guild_id, error, utcnow())
    if inside_transaction(db):
        return (await _write(db, [(0, *row)]))[0]
    writer = _WRITERS.get(db)
    if writer is None:
        writer = _WRITERS[db] = _Writer()
    future = asyncio.get_running_loop().create_future()
    writer.waiting.append((row, future))
    if writer.task is None:
        writer.start(db)
    return await future


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
