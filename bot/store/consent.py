"""Members' consent to having their conversations stored.

`set_consent` records a decision with the policy version and time (history in consent_events);
`has_consent` is what the single write path (`bot.store.exchanges.log_exchange`) asks.
"""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.store.db import transaction, utcnow

OPTED_IN = "opted_in"
OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class ConsentRecord:
    user_id: str
    status: str
    policy_version: str
    updated_at: str


async def ensure_member(db: aiosqlite.Connection, user_id: str, display_name: str | None = None) -> None:
    await db.execute(
        "INSERT INTO members(user_id, display_name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT(user_id) DO UPDATE SET display_name = COALESCE(excluded.display_name, members.display_name)",
        (user_id, display_name, utcnow()),
    )


async def set_consent(
    db: aiosqlite.Connection, user_id: str, opted_in: bool, policy_version: str, display_name: str | None = None
) -> ConsentRecord:
    """Record a member's decision. Opting out takes effect for the very next message."""
    status = OPTED_IN if opted_in else OPTED_OUT
    now = utcnow()
    async with transaction(db):
        await ensure_member(db, user_id, display_name)
        await db.execute(
            "INSERT INTO consent(user_id, status, policy_version, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET status = excluded.status, "
            "policy_version = excluded.policy_version, updated_at = excluded.updated_at",
            (user_id, status, policy_version, now),
        )
        await db.execute(
            "INSERT INTO consent_events(user_id, status, policy_version, at) VALUES (?, ?, ?, ?)",
            (user_id, status, policy_version, now),
        )
    return ConsentRecord(user_id, status, policy_version, now)


async def get_consent(db: aiosqlite.Connection, user_id: str) -> ConsentRecord | None:
    async with db.execute(
        "SELECT user_id, status, policy_version, updated_at FROM consent WHERE user_id = ?", (user_id,)
    ) as cur:
        row = await cur.fetchone()
    return ConsentRecord(*row) if row else None


async def has_consent(db: aiosqlite.Connection, user_id: str) -> bool:
    # One round trip: this runs for every message the bot answers.
    rows = await db.execute_fetchall("SELECT 1 FROM consent WHERE user_id = ? AND status = ?", (user_id, OPTED_IN))
    return bool(rows)


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    async with db.execute("SELECT user_id, display_name, created_at FROM members WHERE user_id = ?", (user_id,)) as cur:
        member = await cur.fetchone()
    async with db.execute(
        "SELECT status, policy_version, at FROM consent_events WHERE user_id = ? ORDER BY id", (user_id,)
    ) as cur:
        events = [dict(r) for r in await cur.fetchall()]
    current = await get_consent(db, user_id)
    return {
        "member": dict(member) if member else None,
        "consent": current.__dict__ if current else None,
        "consent_history": events,
    }


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    """Delete the member row; consent, history, feedback and messages cascade."""
    cur = await db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
    return cur.rowcount
