"""Reading a persona's raw material from the store as `Thread`s.

- Imports, transcripts and synthetic conversations: every source of the persona, read through
  `trainer.sources.source_message_rows` (the bulk form of `iter_source_messages`) (owner senders are the assistant; kind 'silence' is a
  deliberately empty assistant turn). Participants' names come from the source's provenance and
  sender names, for pseudonymisation.
- Curated logs: `messages` of the persona's conversations within its training scope (its own
  guild's, unless `[curation] shared`; see `bot.store.curation.training_scope`), of members
  opted in now. Assistant turns count only when
  approved or corrected (the correction replaces the original); a pending or rejected reply cuts
  the conversation there, so no user turn is paired with a reply it never got. User turns come
  along with the replies that answer them. The member ids involved are kept for forgetting.
"""
from __future__ import annotations

from datetime import datetime

import aiosqlite

from bot.store.consent import OPTED_IN
from bot.store.curation import STATUSES, Scope, scope_condition
from trainer._gc import gc_paused
from trainer.dataset.sessions import Msg, Thread, ts_seconds
from trainer.sources import list_sources, source_message_rows


async def source_threads(db: aiosqlite.Connection, source: dict) -> tuple[list[Thread], dict[str, str], set[str]]:
    """(threads, participants id->name, owner ids) of one stored source; a source of a posts kind
    (`trainer.importers.post_kinds`) gives threads marked `posts`."""
    from trainer.importers import post_kinds

    posts = source["kind"] in post_kinds()
    participants: dict[str, str] = dict((source.get("provenance") or {}).get("participants") or {})
    owners = set(source.get("owner_ids") or [])
    threads: list[Thread] = []
    rows = await source_message_rows(db, source["id"])
    fromiso = datetime.fromisoformat
    naive_epoch = datetime(1970, 1, 1)
    current_key, current, senders = None, [], set()

    def close():
        if current:
            threads.append(Thread(f"source {source['id']}/{current_key}", source["id"], current, group=len(senders) > 2, posts=posts))

    with gc_paused():           # synchronous from here; one object per row, all kept
        for conversation, _seq, ts, sender_id, sender_name, is_owner, kind, content in rows:
            if conversation != current_key:
                close()
                current_key, current, senders = conversation, [], set()
            if kind != "system":
                senders.add(sender_id)
                if sender_id not in participants:
                    participants[sender_id] = sender_name or sender_id
            seconds = None
            if ts:
                dt = fromiso(ts)
                # Naive times are read as UTC; subtracting the naive epoch avoids a replace() per row.
                seconds = dt.timestamp() if dt.tzinfo else (dt - naive_epoch).total_seconds()
            current.append(Msg(seconds, sender_id, sender_name or sender_id, bool(is_owner), kind, content))
        close()
    return threads, participants, owners


async def persona_sources(db: aiosqlite.Connection, persona: str) -> list[dict]:
    return await list_sources(db, persona)


async def curated_threads(db: aiosqlite.Connection, persona: str, scope: Scope | None = None,
                          ) -> tuple[list[Thread], dict[str, str]]:
    """Threads from approved/corrected logs within `scope`, and member id -> display name.

    Only members opted in now count (an opt-out takes their turns out of the next dataset); a
    conversation outside the persona's training scope (another guild's) is not read at all.
    """
    scope_sql, scope_args = scope_condition(scope)
    sql = (
        "SELECT c.id AS cid, m.role, m.author_id, m.content, m.corrected_content, m.curation_status, m.created_at, "
        "mem.display_name FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        f"JOIN consent k ON k.user_id = m.author_id AND k.status = '{OPTED_IN}' "
        f"LEFT JOIN members mem ON mem.user_id = m.author_id WHERE c.persona = ? AND {scope_sql} ORDER BY c.id, m.id"
    )
    threads: list[Thread] = []
    names: dict[str, str] = {}
    segments: dict[tuple[int, int], list] = {}
    cut: dict[int, int] = {}
    async with db.execute(sql, (persona, *scope_args)) as cur:
        cur.arraysize = 1000
        async for r in cur:
            cid = r["cid"]
            part = cut.setdefault(cid, 0)
            author = r["author_id"] or "member"
            if r["display_name"]:
                names[author] = r["display_name"]
            if r["role"] == "assistant":
                if r["curation_status"] not in ("approved", "corrected"):
                    cut[cid] = part + 1     # an unapproved reply ends this segment; later turns start a new one
                    continue
                text = r["corrected_content"] if r["curation_status"] == "corrected" and r["corrected_content"] is not None else r["content"]
                msg = Msg(_ts(r["created_at"]), "persona", "persona", True, "silence" if not text else "text", text or "")
            else:
                msg = Msg(_ts(r["created_at"]), author, names.get(author, author), False, "text", r["content"])
            segments.setdefault((cid, part), []).append((msg, author))
    for (cid, part), items in segments.items():
        messages = [m for m, _ in items]
        if not any(m.is_owner for m in messages):
            continue
        members = frozenset(a for _, a in items)
        speakers = {m.sender_id for m in messages if not m.is_owner}
        threads.append(Thread(f"curated/{cid}.{part}", None, messages, members=members, group=len(speakers) > 1))
    return threads, names


async def curated_counts(db: aiosqlite.Connection, persona: str, scope: Scope | None = None) -> dict[str, int]:
    """The persona's logged replies by curation status, for the build report: approved and corrected
    ones train; pending and rejected ones are left out; `out_of_scope` counts other guilds' replies and
    `not_opted_in` those whose member opted out since."""
    scope_sql, scope_args = scope_condition(scope)
    counts = {s: 0 for s in STATUSES}
    async with db.execute(
        "SELECT m.curation_status, "
        f"(k.user_id IS NOT NULL) AS consented, {scope_sql} AS in_scope, "
        "COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        f"LEFT JOIN consent k ON k.user_id = m.author_id AND k.status = '{OPTED_IN}' "
        "WHERE c.persona = ? AND m.role = 'assistant' GROUP BY 1, 2, 3", (*scope_args, persona),
    ) as cur:
        rows = await cur.fetchall()
    counts["out_of_scope"] = counts["not_opted_in"] = 0
    for status, consented, inside, n in rows:
        if not inside:
            counts["out_of_scope"] += n
        elif not consented:
            counts["not_opted_in"] += n
        else:
            counts[status] += n
    return counts


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return ts_seconds(datetime.fromisoformat(value))
    except ValueError:
        return None
