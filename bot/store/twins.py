"""Who controls each digital twin, and where its owner shared it (tables from 0014_twins).

A twin row names the persona, the person it writes like (`owner_name`), the owner's ids in their
exports, and the Discord member who controls it (NULL when made in the terminal, where whoever runs
the CLI is the owner). `is_owner` is the one access check every twin action goes through. Shares
list the channels a twin may speak in; `share` refuses a channel whose binding does not allow
twins (`channel_bindings.twins_allowed`, set by admins). As member data, a member's twins are in
`export_user`, and `delete_user` removes every row of their twins (`persona_rows.delete_persona_rows`,
which `bot.persona.removal` also uses before removing a member persona's files).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import aiosqlite

from bot.store.db import transaction, utcnow
from bot.store.persona_rows import delete_persona_rows


class TwinAccessError(PermissionError):
    """The member is not the twin's owner (or the channel does not allow twins)."""


@dataclass(frozen=True)
class Twin:
    persona: str
    owner_name: str
    owner_ids: tuple[str, ...] = field(default_factory=tuple)
    discord_owner_id: str | None = None
    created_at: str = ""


def _twin(row) -> Twin:
    return Twin(row["persona"], row["owner_name"], tuple(json.loads(row["owner_ids"] or "[]")), row["discord_owner_id"], row["created_at"])


async def add_twin(db: aiosqlite.Connection, persona: str, owner_name: str, owner_ids: list[str] | tuple[str, ...] = (),
                   discord_owner_id: str | None = None) -> Twin:
    async with transaction(db):
        await db.execute("INSERT INTO twins(persona, owner_name, owner_ids, discord_owner_id, created_at) VALUES (?, ?, ?, ?, ?)",
                         (persona, owner_name, json.dumps(list(owner_ids)), discord_owner_id, utcnow()))
    return await get_twin(db, persona)


async def get_twin(db: aiosqlite.Connection, persona: str) -> Twin | None:
    async with db.execute("SELECT * FROM twins WHERE persona = ?", (persona,)) as cur:
        row = await cur.fetchone()
    return _twin(row) if row else None


async def list_twins(db: aiosqlite.Connection, discord_owner_id: str | None = None) -> list[Twin]:
    sql, args = "SELECT * FROM twins", ()
    if discord_owner_id is not None:
        sql, args = sql + " WHERE discord_owner_id = ?", (discord_owner_id,)
    async with db.execute(sql + " ORDER BY persona", args) as cur:
        return [_twin(r) for r in await cur.fetchall()]


def is_owner(twin: Twin, member_id: str | None) -> bool:
    """Only the controlling member may import into, build, share, export or delete a twin."""
    return twin.discord_owner_id is not None and member_id is not None and str(member_id) == twin.discord_owner_id


async def set_owner_ids(db: aiosqlite.Connection, persona: str, owner_ids: list[str]) -> None:
    async with transaction(db):
        await db.execute("UPDATE twins SET owner_ids = ? WHERE persona = ?", (json.dumps(sorted(set(owner_ids))), persona))


async def twins_allowed(db: aiosqlite.Connection, channel_id: str) -> bool:
    async with db.execute("SELECT twins_allowed FROM channel_bindings WHERE channel_id = ?", (str(channel_id),)) as cur:
        row = await cur.fetchone()
    return bool(row and row[0])


async def allow_twins(db: aiosqlite.Connection, channel_id: str, allowed: bool) -> bool:
    """Set the admins' flag on a bound channel; False when the channel has no binding."""
    async with transaction(db):
        cur = await db.execute("UPDATE channel_bindings SET twins_allowed = ? WHERE channel_id = ?", (int(allowed), str(channel_id)))
        if not allowed:
            await db.execute("DELETE FROM twin_shares WHERE channel_id = ?", (str(channel_id),))
    return cur.rowcount > 0


async def share(db: aiosqlite.Connection, persona: str, channel_id: str, guild_id: str | None = None) -> None:
    if not await twins_allowed(db, channel_id):
        raise TwinAccessError("this channel's admins have not allowed twins here (/persona set ... twins_allowed:True)")
    async with transaction(db):
        await db.execute("INSERT INTO twin_shares(persona, channel_id, guild_id, shared_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(persona, channel_id) DO NOTHING", (persona, str(channel_id), guild_id, utcnow()))


async def unshare(db: aiosqlite.Connection, persona: str, channel_id: str | None = None) -> int:
    async with transaction(db):
        if channel_id is None:
            cur = await db.execute("DELETE FROM twin_shares WHERE persona = ?", (persona,))
        else:
            cur = await db.execute("DELETE FROM twin_shares WHERE persona = ? AND channel_id = ?", (persona, str(channel_id)))
    return cur.rowcount


async def shared_in(db: aiosqlite.Connection, channel_id: str) -> list[str]:
    """Twins shared into a channel that (still) allows twins."""
    async with db.execute("SELECT s.persona FROM twin_shares s JOIN channel_bindings b ON b.channel_id = s.channel_id "
                          "WHERE s.channel_id = ? AND b.twins_allowed = 1 ORDER BY s.persona", (str(channel_id),)) as cur:
        return [r[0] for r in await cur.fetchall()]


async def delete_rows(db: aiosqlite.Connection, persona: str) -> int:
    cur = await db.execute("DELETE FROM twins WHERE persona = ?", (persona,))       # shares cascade
    return cur.rowcount


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    return {"twins": [{"persona": t.persona, "owner_name": t.owner_name, "owner_ids": list(t.owner_ids),
                       "created_at": t.created_at} for t in await list_twins(db, str(user_id))]}


async def delete_user(db: aiosqlite.Connection, user_id: str) -> int:
    """Forgetting a member deletes every row of the twins they control (their own words). The
    twins' files under the data directory go with `personabot twin delete` / `/twin delete`."""
    total = 0
    for twin in await list_twins(db, str(user_id)):
        total += sum((await delete_persona_rows(db, twin.persona)).values())
    return total
