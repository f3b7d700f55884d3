"""Sources store: save once per content hash, read back in order (streaming and bulk)."""
from __future__ import annotations

from datetime import datetime, timezone

from trainer.importers.base import ParseResult, RawMessage
from trainer.sources import hash_path, iter_source_messages, list_sources, save_source, source_message_rows


async def test_save_is_idempotent_and_reads_back_in_order(db, tmp_path):
    ts = datetime(2024, 1, 1, tzinfo=timezone.utc)
    result = ParseResult(owner_ids={"me"}, messages=[RawMessage("b", 1, ts, "me", "Me", "second"),
                                                     RawMessage("b", 0, None, "you", "You", "first"),
                                                     RawMessage("a", 0, ts, "me", "Me", "other", kind="silence")])
    first = await save_source(db, persona="p", kind="jsonl", label="x", content_hash="h1", result=result)
    again = await save_source(db, persona="p", kind="jsonl", label="x", content_hash="h1", result=result)
    assert first.created and not again.created and first.id == again.id
    streamed = [(owner, m.conversation, m.text, m.timestamp) for owner, m in [x async for x in iter_source_messages(db, first.id)]]
    assert streamed == [(True, "a", "other", ts), (False, "b", "first", None), (True, "b", "second", ts)]
    rows = await source_message_rows(db, first.id)
    assert [(r[0], r[7], r[5]) for r in rows] == [("a", "other", 1), ("b", "first", 0), ("b", "second", 1)]
    assert (await list_sources(db, "p"))[0]["counts"]["imported"] == 3
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert hash_path(f) == hash_path(f) and hash_path(tmp_path) != hash_path(f)
