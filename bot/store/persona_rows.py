"""Every row kept for one persona, and their deletion in one transaction.

`PERSONA_TABLES` lists every table that keys rows by persona, dependants first; their children go
by cascade (source_messages, dataset_sources/members, training_metrics, messages → feedback and
curation decisions, twin_shares, review_votes). A test checks that every table with a `persona`
column is listed, so a new feature's table cannot be left behind when a persona is deleted.
"""
from __future__ import annotations

import aiosqlite

from bot.store.db import transaction

PERSONA_TABLES = ("synth_items", "sources", "dataset_versions", "model_reviews", "model_versions", "registry_events",
                  "training_runs", "conversations", "chat_threads", "channel_bindings", "twins")
# Tables with a persona column whose rows go by cascade with a listed table's.
CASCADED = {"twin_shares": "twins"}


async def delete_persona_rows(db: aiosqlite.Connection, persona: str) -> dict[str, int]:
    """Delete every row of `persona` in one transaction (joins an outer one). Returns rows per table."""
    counts = {}
    async with transaction(db):
        for table in PERSONA_TABLES:
            cur = await db.execute(f"DELETE FROM {table} WHERE persona = ?", (persona,))
            counts[table] = cur.rowcount
    return counts
