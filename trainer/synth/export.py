"""Write synthetic conversations as OpenAI chat JSONL (`{"messages": [...]}` per line).

Contract: `export_jsonl(db, persona, source_ids, path)` writes one line per source, in the order
given: the persona's system prompt (word for word, as serving sends it), then the turns. A silent
persona turn is written as `{"role": "assistant", "content": ""}`: an empty assistant message is
the mark of deliberate silence, exactly as the dataset builder writes it, so training and serving
treat silence alike (see `bot.persona.synthetic`). Only cookbook keys are written, so
`personabot dataset validate` accepts the file. Returns the number of lines written. The file is replaced atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import aiosqlite

from bot.persona.spec import PersonaSpec
from trainer.synth.parse import ASSISTANT, Turn
from trainer.synth.store import source_turns


def chat_example(persona: PersonaSpec, turns: list[Turn]) -> dict:
    messages: list[dict] = [{"role": "system", "content": persona.offline_system_prompt}]
    for t in turns:
        if t.silence:
            messages.append({"role": ASSISTANT, "content": ""})
        else:
            messages.append({"role": t.role, "content": t.text})
    return {"messages": messages}


async def export_jsonl(db: aiosqlite.Connection, persona: PersonaSpec, source_ids: list[int], path: Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for source_id in source_ids:
            turns = await source_turns(db, source_id)
            fh.write(json.dumps(chat_example(persona, turns), ensure_ascii=False) + "\n")
            written += 1
    os.replace(tmp, path)
    return written
