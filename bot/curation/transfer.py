"""`personabot curate export`/`import`: one item per JSONL line, edited offline.

Export writes `{"id", "persona", "where", "created_at", "context": [{"speaker", "role", "text"}],
"reply", "signals", "status", "correction"}`. A reviewer edits `status` (pending, approved,
rejected, corrected) and `correction` (the corrected reply; required for `corrected`, ignored
otherwise). Import reads every line, collects a `file:line: reason` for each bad one, and returns
the good decisions, so what is good is still applied and nothing is skipped silently.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from bot.store.curation import STATUSES, ReviewItem


@dataclass(frozen=True)
class Decision:
    line: int
    id: int
    status: str
    correction: str | None


def export_record(item: ReviewItem) -> dict:
    return {"id": item.id, "persona": item.persona, "where": item.conversation_key, "created_at": item.created_at,
            "context": [{"speaker": t.speaker, "role": t.role, "text": t.text} for t in item.context],
            "reply": item.reply, "signals": {"thumbs_up": item.signals.thumbs_up, "thumbs_down": item.signals.thumbs_down,
                                             "flags": item.signals.flags},
            "status": item.status, "correction": item.correction}


def parse_lines(lines: Iterable[str], path: Path | str) -> tuple[list[Decision], list[str]]:
    """(decisions, errors) of an edited export; errors read `file:line: reason`."""
    decisions: list[Decision] = []
    errors: list[str] = []
    seen: dict[int, int] = {}
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            errors.append(f"{where}: expected a JSON object with \"id\" and \"status\", got {type(record).__name__}")
            continue
        item_id = record.get("id")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            errors.append(f"{where}: \"id\" must be the item's number, got {item_id!r}")
            continue
        status = record.get("status")
        if status not in STATUSES:
            errors.append(f"{where}: item {item_id}: \"status\" must be one of {', '.join(STATUSES)}, got {status!r}")
            continue
        correction = record.get("correction")
        if correction is not None and not isinstance(correction, str):
            errors.append(f"{where}: item {item_id}: \"correction\" must be text or null, got {type(correction).__name__}")
            continue
        if status == "corrected" and not (correction and correction.strip()):
            errors.append(f"{where}: item {item_id}: status \"corrected\" needs the corrected reply in \"correction\"")
            continue
        if item_id in seen:
            errors.append(f"{where}: item {item_id} already decided on line {seen[item_id]}")
            continue
        seen[item_id] = n
        decisions.append(Decision(n, item_id, status, correction.strip() if status == "corrected" else None))
    return decisions, errors
