"""Training-run results waiting to be posted to each persona's admin channel.

The scheduled trainer usually runs in its own process (`personabot trainer`), which has no Discord
connection. It writes each run's message into `training_runs.notice`; the bot posts what is pending
(`RunNotices.poll`, called periodically) and marks it posted. A trainer running inside the bot
posts directly and marks it the same way, so nothing is posted twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

import aiosqlite

from bot.store.db import utcnow

log = logging.getLogger(__name__)

Notifier = Callable[[str, str], Awaitable[None]]   # (persona, text)


@dataclass(frozen=True)
class Notice:
    run_id: int
    persona: str
    text: str


async def pending_notices(db: aiosqlite.Connection) -> list[Notice]:
    async with db.execute("SELECT id, persona, notice FROM training_runs WHERE notice IS NOT NULL AND notified_at IS NULL "
                          "ORDER BY id") as cur:
        return [Notice(*row) for row in await cur.fetchall()]


async def mark_notified(db: aiosqlite.Connection, run_id: int) -> None:
    await db.execute("UPDATE training_runs SET notified_at = ? WHERE id = ?", (utcnow(), run_id))
    await db.commit()


class RunNotices:
    """Posts pending run results through `notifier` (the bot's admin-channel sender)."""

    def __init__(self, db: aiosqlite.Connection, notifier: Notifier):
        self._db = db
        self._notifier = notifier

    async def poll(self) -> int:
        """Post every pending notice; one that fails stays pending for the next poll. Returns how many were posted."""
        posted = 0
        for notice in await pending_notices(self._db):
            try:
                await self._notifier(notice.persona, notice.text)
            except Exception:
                log.exception("could not post the result of training run %s for %s", notice.run_id, notice.persona)
                continue
            await mark_notified(self._db, notice.run_id)
            posted += 1
        return posted
