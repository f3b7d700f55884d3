"""Curation of stored persona replies: approve, reject, or correct (the original is kept for audit).

Only replies that are approved or corrected become training data. Used by `/curate` in Discord and
`personabot curate` in the terminal.
"""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.store.db import transaction, utcnow

STATUSES = ("pending", "approved", "rejected", "corrected")


@dataclass(frozen=True)
class PendingReply:
    message_id: int
    persona: str
    conversation_id: int
    prompt: str          # the member turn it answered
    reply: str
    model: str | None
    created_at: str


async def list_replies(db: aiosqlite.Connection, *, persona: str | None = None, status: str = "pending",
                       limit: int = 20, offset: int = 0) -> list[PendingReply]:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    sql = ("SELECT a.id, c.persona, a.conversation_id, COALESCE(u.content, '') AS prompt, a.content, a.model, a.created_at "
           "FROM messages a JOIN conversations c ON c.id = a.conversation_id LEFT JOIN messages u ON u.id = a.reply_to "
           "WHERE a.role = 'assistant' AND a.curation_status = ?")
    args: list = [status]
    if persona:
        sql += " AND c.persona = ?"
        args.append(persona)
    sql += " ORDER BY a.id LIMIT ? OFFSET ?"
    args += [limit, offset]
    async with db.execute(sql, args) as cur:
        return [PendingReply(*row) for row in await cur.fetchall()]


async def curate(db: aiosqlite.Connection, message_id: int, *, status: str, curator: str,
                 correction: str | None = None) -> bool:
    """Set a reply's curation status. `corrected` requires the corrected text. False if no such reply."""
    if status not in ("approved", "rejected", "corrected", "pending"):
        raise ValueError(f"unknown curation status {status!r}")
    if status == "corrected" and not (correction and correction.strip()):
        raise ValueError("a correction needs the corrected reply text")
    async with transaction(db):
        cur = await db.execute(
            "UPDATE messages SET curation_status = ?, corrected_content = ?, curated_by = ?, curated_at = ? "
            "WHERE id = ? AND role = 'assistant'",
            (status, correction if status == "corrected" else None, curator, utcnow(), message_id),
        )
    return cur.rowcount == 1


async def counts(db: aiosqlite.Connection, persona: str | None = None) -> dict[str, int]:
    sql = ("SELECT a.curation_status, COUNT(*) FROM messages a JOIN conversations c ON c.id = a.conversation_id "
           "WHERE a.role = 'assistant'")
    args: tuple = ()
    if persona:
        sql += " AND c.persona = ?"
        args = (persona,)
    async with db.execute(sql + " GROUP BY a.curation_status", args) as cur:
        found = dict(await cur.fetchall())
    return {s: found.get(s, 0) for s in STATUSES}
