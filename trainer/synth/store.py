"""Database side of synthetic generation: resume state, provenance, and the synthetic sources.

Contract:
- `synth_items` (migration 0005) has one row per planned conversation that reached the writer,
  keyed per persona by `PlanItem.key`. It is written as soon as the transcript arrives
  (`insert_generated`) and finished as kept or dropped, so a rerun knows what is done and an
  interrupted run never pays twice for a transcript.
- A kept conversation becomes one source of kind `synthetic` (`trainer.sources.save_source`), whose
  provenance JSON holds the template hash, topic, profile, model, sampling parameters and seed,
  so `dataset build` picks it up and its manifest can say where every example came from.
- Messages: user turns have `sender_id='user'`, persona turns `sender_id='assistant'` (the owner id,
  so `is_owner` marks the persona's side). A deliberately empty persona turn is stored with
  `kind='silence'` and `text=''` (see `bot.persona.synthetic`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import aiosqlite

from bot.store.db import utcnow
from trainer.importers.base import ParseResult, RawMessage
from trainer.sources import hash_text, iter_source_messages, save_source
from trainer.synth.catalog import PlanItem
from trainer.synth.parse import ASSISTANT, USER, Turn

SOURCE_KIND = "synthetic"
USER_ID, PERSONA_ID = USER, ASSISTANT


@dataclass(frozen=True)
class ItemRow:
    id: int
    key: str
    status: str                 # generated | kept | dropped
    raw: str
    drop_reason: str | None
    source_id: int | None


async def load_items(db: aiosqlite.Connection, persona: str, keys: list[str]) -> dict[str, ItemRow]:
    """The rows already stored for these plan keys (any status)."""
    found: dict[str, ItemRow] = {}
    for start in range(0, len(keys), 500):           # SQLite caps bound parameters
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        async with db.execute(
            f"SELECT id, item_key, status, raw, drop_reason, source_id FROM synth_items WHERE persona = ? AND item_key IN ({marks})",
            (persona, *chunk),
        ) as cur:
            async for r in cur:
                found[r["item_key"]] = ItemRow(r["id"], r["item_key"], r["status"], r["raw"], r["drop_reason"], r["source_id"])
    return found


async def insert_generated(db: aiosqlite.Connection, persona: str, item: PlanItem, provenance: dict, raw: str, *,
                           attempts: int, prompt_tokens: int | None, completion_tokens: int | None, estimated: bool) -> int:
    cur = await db.execute(
        "INSERT INTO synth_items(persona, item_key, run_seed, item_index, status, template, template_hash, topic, topic_tag, "
        "profile, backend, model, sampling, item_seed, attempts, prompt_tokens, completion_tokens, tokens_estimated, raw, created_at) "
        "VALUES (?, ?, ?, ?, 'generated', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (persona, item.key, provenance["run_seed"], item.index, item.template.name, item.template.hash, item.topic.text,
         item.topic.tag, item.profile.id, provenance["backend"], provenance["model"], json.dumps(provenance["sampling"], sort_keys=True),
         item.seed, attempts, prompt_tokens, completion_tokens, int(estimated), raw, utcnow()),
    )
    await db.commit()
    return cur.lastrowid


async def item_provenance(db: aiosqlite.Connection, row_id: int) -> dict:
    """Provenance of a stored item as recorded when it was generated (a resumed item keeps its own)."""
    async with db.execute("SELECT * FROM synth_items WHERE id = ?", (row_id,)) as cur:
        r = await cur.fetchone()
    return {
        "generator": "personabot synth", "item_key": r["item_key"], "run_seed": r["run_seed"], "index": r["item_index"],
        "template": r["template"], "template_hash": r["template_hash"], "topic": r["topic"], "topic_tag": r["topic_tag"],
        "profile": r["profile"], "backend": r["backend"], "model": r["model"], "sampling": json.loads(r["sampling"]),
        "seed": r["item_seed"],
    }


async def mark_dropped(db: aiosqlite.Connection, row_id: int, reason: str, detail: str) -> None:
    await db.execute("UPDATE synth_items SET status = 'dropped', drop_reason = ?, drop_detail = ?, finished_at = ? WHERE id = ?",
                     (reason, detail, utcnow(), row_id))
    await db.commit()


def turns_to_result(turns: list[Turn], conversation: str, persona_label: str, user_label: str) -> ParseResult:
    result = ParseResult(participants={USER_ID: user_label, PERSONA_ID: persona_label}, owner_ids={PERSONA_ID})
    for seq, t in enumerate(turns):
        result.messages.append(RawMessage(
            conversation=conversation, seq=seq, timestamp=None,
            sender_id=PERSONA_ID if t.role == ASSISTANT else USER_ID,
            sender_name=persona_label if t.role == ASSISTANT else user_label,
            text="" if t.silence else t.text, kind="silence" if t.silence else "text",
        ))
    return result


async def save_kept(db: aiosqlite.Connection, persona: str, row_id: int, turns: list[Turn], *,
                    persona_label: str, user_label: str) -> int:
    """Store a kept conversation as a synthetic source and finish its item. Returns the source id."""
    provenance = await item_provenance(db, row_id)
    conversation = f"synth:{provenance['run_seed']}:{provenance['index']}"
    result = turns_to_result(turns, conversation, persona_label, user_label)
    content = json.dumps([[m.sender_id, m.kind, m.text] for m in result.messages], ensure_ascii=False)
    saved = await save_source(
        db, persona=persona, kind=SOURCE_KIND,
        label=f"synth seed={provenance['run_seed']} #{provenance['index']}: {provenance['topic'][:60]}",
        content_hash=hash_text(provenance["item_key"] + "\0" + content), result=result, provenance=provenance,
    )
    await db.execute("UPDATE synth_items SET status = 'kept', source_id = ?, finished_at = ? WHERE id = ?", (saved.id, utcnow(), row_id))
    await db.commit()
    return saved.id


async def kept_conversations(db: aiosqlite.Connection, persona: str) -> list[list[Turn]]:
    """Every synthetic conversation kept so far for the persona, oldest first (to seed near-dup detection)."""
    async with db.execute(
        "SELECT source_id FROM synth_items WHERE persona = ? AND status = 'kept' AND source_id IS NOT NULL ORDER BY id", (persona,)
    ) as cur:
        ids = [r["source_id"] for r in await cur.fetchall()]
    out = []
    for source_id in ids:
        out.append(await source_turns(db, source_id))
    return out


async def source_turns(db: aiosqlite.Connection, source_id: int) -> list[Turn]:
    turns = []
    async for is_owner, m in iter_source_messages(db, source_id):
        turns.append(Turn(ASSISTANT if is_owner else USER, m.text, m.kind == "silence"))
    return turns


async def kept_sources(db: aiosqlite.Connection, persona: str, keys: list[str]) -> list[int]:
    """Source ids of the kept items among `keys`, in the order of `keys` (a run's plan order)."""
    rows = await load_items(db, persona, keys)
    return [rows[k].source_id for k in keys if k in rows and rows[k].status == "kept" and rows[k].source_id is not None]
