"""Persona bindings of chat channels and the threads opened with /chat (tables from 0002_channels).

A binding says which persona speaks in a channel and whether it answers every message (`all`) or
only mentions and replies (`mention`). Threads opened with /chat belong to one persona and are
answered without a mention. Neither holds message content; the only member data is who set a
binding or opened a thread, which `export_user` reports and `delete_user` clears.
"""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.store.db import transaction, utcnow

MODES = ("mention", "all")


@dataclass(frozen=True)
class Binding:
    channel_id: str
    persona: str
    mode: str = "mention"
    guild_id: str | None = None


@dataclass(frozen=True)
class ChatThread:
    thread_id: str
    persona: str
    parent_channel_id: str | None = None


async def bind_channel(db: aiosqlite.Connection, channel_id: str, persona: str, *, mode: str = "mention",
                       guild_id: str | None = None, set_by: str | None = None) -> Binding:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    async with transaction(db):
        await db.execute(
            "INSERT INTO channel_bindings(channel_id, guild_id, persona, mode, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(channel_id) DO UPDATE SET persona = excluded.persona, mode = excluded.mode, "
            "guild_id = excluded.guild_id, set_by = excluded.set_by, set_at = excluded.set_at",
            (channel_id, guild_id, persona, mode, set_by, utcnow()),
        )
    return Binding(channel_id, persona, mode, guild_id)


async def unbind_channel(db: aiosqlite.Connection, channel_id: str) -> bool:
    async with transaction(db):
        cur = await db.execute("DELETE FROM channel_bindings WHERE channel_id = ?", (channel_id,))
    return cur.rowcount > 0


async def list_bindings(db: aiosqlite.Connection) -> list[Binding]:
    async with db.execute("SELECT channel_id, persona, mode, guild_id FROM channel_bindings") as cur:
        return [Binding(*row) for row in await cur.fetchall()]


async def record_chat_thread(db: aiosqlite.Connection, thread_id: str, persona: str, *,
                             parent_channel_id: str | None = None, opened_by: str | None = None) -> ChatThread:
    async with transaction(db):
        await db.execute(
            "INSERT INTO chat_threads(thread_id, parent_channel_id, persona, opened_by, opened_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(thread_id) DO UPDATE SET persona = excluded.persona",
            (thread_id, parent_channel_id, persona, opened_by, utcnow()),
        )
    return ChatThread(thread_id, persona, parent_channel_id)


async def list_chat_threads(db: aiosqlite.Connection) -> list[ChatThread]:
    async with db.execute("SELECT thread_id, persona, parent_channel_id FROM chat_threads") as cur:
        return [ChatThread(*row) for row in await cur.fetchall()]


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    async with db.execute(
        "SELECT channel_id, persona, mode, set_at FROM channel_bindings WHERE set_by = ? ORDER BY set_at", (user_id,)
    ) as cur:
        bindings = [dict(r) for r in await cur.fetchall()]
    async with db.execute(
        "SELECT thread_id, persona, opened_at FROM chat_threads WHERE opened_by = ? ORDER BY opened_at", (user_id,)
    ) as cur:
        threads = [dict(r) for r in await cur.fetchall()]
    return {"channel_bindings_set": bindings, "chat_threads_opened": threads}


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    """Forget who set bindings and opened threads; the bindings themselves are the channel's, not the member's."""
    a = await db.execute("UPDATE channel_bindings SET set_by = NULL WHERE set_by = ?", (user_id,))
    b = await db.execute("UPDATE chat_threads SET opened_by = NULL WHERE opened_by = ?", (user_id,))
    return a.rowcount + b.rowcount
