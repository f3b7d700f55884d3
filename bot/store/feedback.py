"""👍/👎 feedback on persona replies, from consenting members only.

`record_feedback` stores a member's reaction; `remove_feedback` takes it back when they remove the
reaction (only if what is stored is that reaction: removing 👍 leaves a later 👎 alone).
"""
from __future__ import annotations

import aiosqlite

from bot.store.consent import has_consent
from bot.store.db import transaction, utcnow

FEEDBACK_EMOJI = {"👍": 1, "👎": -1}


def feedback_value(emoji: str) -> int | None:
    """+1 for 👍, -1 for 👎 (any skin tone), None for any other reaction."""
    return next((v for k, v in FEEDBACK_EMOJI.items() if emoji.startswith(k)), None)


async def record_feedback(db: aiosqlite.Connection, *, user_id: str, reply_external_id: str, value: int) -> bool:
    """Store +1/-1 for a stored reply, identified by its Discord message id. Returns False when not stored
    (member not opted in, or the reply was never logged)."""
    if value not in (-1, 1):
        raise ValueError(f"feedback value must be -1 or 1, got {value!r}")
    async with transaction(db):   # consent checked and feedback written with no opt-out in between
        if not await has_consent(db, user_id):
            return False
        async with db.execute(
            "SELECT id FROM messages WHERE external_id = ? AND role = 'assistant'", (reply_external_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return False
        await db.execute(
            "INSERT INTO feedback(message_id, user_id, value, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(message_id, user_id) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
            (row[0], user_id, value, utcnow()),
        )
    return True


async def remove_feedback(db: aiosqlite.Connection, *, user_id: str, reply_external_id: str, value: int) -> bool:
    """Delete the member's +1/-1 on a stored reply when they remove that reaction. True if something was deleted."""
    if value not in (-1, 1):
        raise ValueError(f"feedback value must be -1 or 1, got {value!r}")
    cur = await db.execute(
        "DELETE FROM feedback WHERE user_id = ? AND value = ? AND message_id IN "
        "(SELECT id FROM messages WHERE external_id = ? AND role = 'assistant')",
        (user_id, value, reply_external_id),
    )
    await db.commit()
    return cur.rowcount > 0


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    async with db.execute(
        "SELECT f.value, f.created_at, m.external_id AS reply_message FROM feedback f JOIN messages m ON m.id = f.message_id "
        "WHERE f.user_id = ? ORDER BY f.id",
        (user_id,),
    ) as cur:
        return {"feedback": [dict(r) for r in await cur.fetchall()]}


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    cur = await db.execute("DELETE FROM feedback WHERE user_id = ?", (user_id,))
    return cur.rowcount
