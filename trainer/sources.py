"""Storing training sources (imports, transcripts, synthetic conversations) in the database.

`save_source` writes one source and its messages in a single transaction, keyed per persona by the
content hash: saving the same content twice returns the existing source and writes nothing.
`iter_source_messages` reads them back in conversation order for dataset building.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import AsyncIterator

import aiosqlite

from bot.store.db import utcnow
from trainer._gc import gc_paused
from trainer.importers.base import ParseResult, RawMessage


@dataclass(frozen=True)
class SavedSource:
    id: int
    created: bool          # False when the same content was already imported for this persona
    counts: dict


def hash_path(path: Path) -> str:
    """sha256 over a file, or over every file in a folder (relative names included, sorted)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def result_counts(result: ParseResult) -> dict:
    return {
        "imported": len(result.messages),
        "skipped": dict(sorted(result.skipped.items())),
        "skipped_total": sum(result.skipped.values()),
        "merged": result.merged,
        "problems": len(result.problems),
    }


async def find_source(db: aiosqlite.Connection, persona: str, content_hash: str) -> aiosqlite.Row | None:
    async with db.execute(
        "SELECT id, counts FROM sources WHERE persona = ? AND content_hash = ?", (persona, content_hash)
    ) as cur:
        return await cur.fetchone()


async def save_source(
    db: aiosqlite.Connection,
    *,
    persona: str,
    kind: str,
    label: str,
    content_hash: str,
    result: ParseResult,
    provenance: dict | None = None,
) -> SavedSource:
    existing = await find_source(db, persona, content_hash)
    if existing is not None:
        return SavedSource(existing["id"], False, json.loads(existing["counts"]))
    counts = result_counts(result)
    owners = set(result.owner_ids)
    cur = await db.execute(
        "INSERT INTO sources(persona, kind, label, content_hash, owner_ids, counts, provenance, imported_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (persona, kind, label, content_hash, json.dumps(sorted(owners)), json.dumps(counts),
         json.dumps(provenance) if provenance is not None else None, utcnow()),
    )
    source_id = cur.lastrowid
    messages = result.messages
    # reply_to / external_id are named only when some message has one: leaving them to their default
    # (NULL) stores the same rows, and Python's sqlite3 binds None slowly (an adapter lookup per value).
    extra = [c for c in ("reply_to", "external_id") if list(map(attrgetter(c), messages)).count(None) != len(messages)]
    sql = ("INSERT INTO source_messages(source_id, conversation, seq, ts, sender_id, sender_name, is_owner, kind, content"
           + "".join(f", {c}" for c in extra) + ") VALUES (" + ", ".join("?" * (9 + len(extra))) + ")")
    # In chunks, each inserted by aiosqlite's thread while this one builds the next chunk's rows
    # (SQLite releases the GIL while it steps), all in the one transaction committed below.
    pending = None
    for start in range(0, len(messages), _INSERT_CHUNK):
        with gc_paused():       # synchronous: one tuple per message, kept until inserted
            rows = list(_message_rows(source_id, messages[start:start + _INSERT_CHUNK], owners, extra))   # a list binds faster than a generator
        if pending is not None:
            await pending
        pending = asyncio.ensure_future(db.executemany(sql, rows))
    if pending is not None:
        await pending
    await db.commit()
    return SavedSource(source_id, True, counts)


_INSERT_CHUNK = 20_000


def _message_rows(source_id: int, messages: list[RawMessage], owners: set[str], extra: list[str]):
    if not extra:
        for m in messages:
            ts = m.timestamp
            yield (source_id, m.conversation, m.seq, ts.isoformat() if ts else None, m.sender_id, m.sender_name,
                   int(m.sender_id in owners), m.kind, m.text)
        return
    for m in messages:
        ts = m.timestamp
        yield (source_id, m.conversation, m.seq, ts.isoformat() if ts else None, m.sender_id, m.sender_name,
               int(m.sender_id in owners), m.kind, m.text, *(getattr(m, c) for c in extra))


async def list_sources(db: aiosqlite.Connection, persona: str | None = None) -> list[dict]:
    sql = "SELECT id, persona, kind, label, content_hash, owner_ids, counts, provenance, imported_at FROM sources"
    args: tuple = ()
    if persona is not None:
        sql += " WHERE persona = ?"
        args = (persona,)
    async with db.execute(sql + " ORDER BY id", args) as cur:
        rows = await cur.fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["owner_ids"] = json.loads(d["owner_ids"])
        d["counts"] = json.loads(d["counts"])
        d["provenance"] = json.loads(d["provenance"]) if d["provenance"] else None
        out.append(d)
    return out


async def iter_source_messages(db: aiosqlite.Connection, source_id: int) -> AsyncIterator[tuple[bool, RawMessage]]:
    """(is_owner, message) in conversation order."""
    from datetime import datetime

    async with db.execute(
        "SELECT conversation, seq, ts, sender_id, sender_name, is_owner, kind, content, reply_to, external_id "
        "FROM source_messages WHERE source_id = ? ORDER BY conversation, seq",
        (source_id,),
    ) as cur:
        # aiosqlite fetches `arraysize` rows per thread hop; the default of 1 makes big sources crawl.
        cur.arraysize = 2000
        async for r in cur:
            yield bool(r["is_owner"]), RawMessage(
                conversation=r["conversation"], seq=r["seq"],
                timestamp=datetime.fromisoformat(r["ts"]) if r["ts"] else None,
                sender_id=r["sender_id"], sender_name=r["sender_name"] or r["sender_id"], text=r["content"],
                kind=r["kind"], reply_to=r["reply_to"], external_id=r["external_id"],
            )


async def source_message_rows(db: aiosqlite.Connection, source_id: int) -> list[tuple]:
    """All messages of a source as plain tuples, in conversation order, in one round trip:
    (conversation, seq, ts ISO string or None, sender_id, sender_name, is_owner, kind, content).
    The bulk path for dataset building; `iter_source_messages` is the convenient one."""
    async with db.execute(
        "SELECT conversation, seq, ts, sender_id, sender_name, is_owner, kind, content "
        "FROM source_messages WHERE source_id = ? ORDER BY conversation, seq",
        (source_id,),
    ) as cur:
        cur.row_factory = None          # plain tuples straight from sqlite3, not Row objects converted afterwards
        return await cur.fetchall()
