"""One real run with the embedded SmolLM2-135M through the local backend (slow: real weights on CPU).

Quality is not the point: a 135M model follows the transcript format only loosely. The test shows
the pipeline end to end with a real model: prompt rendering, streaming generation through
`LocalBackend`, parsing and clean-up of what it actually writes, storage with provenance. The
persona is a copy of TIM with a short template that opens the transcript (the writer continues
it) and `min_turns = 2`, which suit a tiny model.
"""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from trainer.sources import list_sources
from trainer.synth import RunOptions, load_catalog, run_synth
from trainer.synth.store import source_turns

from .conftest import persona_copy

TINY_TEMPLATE = """# A short prompt a 135M model can follow, with an opening for it to continue.
Write a short chat between {user} and {persona}, a kind tutor, about {topic}. The user is {user_profile}. Every line starts with "{user}:" or "{persona}:".
=== opening ===
{user}: Hi {persona}! Can you explain {topic}?
{persona}:
"""


@pytest.mark.slow
async def test_real_smollm2_writes_a_parseable_conversation(db, tmp_path):
    from bot.backends import local
    from bot.backends.local_models import EMBEDDED_MODEL, resolve_model
    from bot.persona import load_persona

    folder = persona_copy(tmp_path, "tim")
    toml = (folder / "persona.toml").read_text(encoding="utf-8").replace("min_turns = 4", "min_turns = 2")
    (folder / "persona.toml").write_text(toml, encoding="utf-8")
    for template in (folder / "templates").glob("*.txt"):
        template.unlink()
    (folder / "templates" / "tiny.txt").write_text(TINY_TEMPLATE, encoding="utf-8")
    tim = load_persona(folder)
    catalog = load_catalog(tim)

    # Same cache as the other real-model tests: converted once per machine under data/models.
    model_dir = resolve_model(EMBEDDED_MODEL, REPO / "data" / "models")
    backend = local.LocalBackend.load(model_dir, device="cpu", name=EMBEDDED_MODEL)
    try:
        report = await run_synth(db, backend, tim, catalog,
                                 RunOptions(count=2, seed=1, concurrency=1, max_tokens=56, temperature=0.7, tags=("general",)))
    finally:
        await backend.aclose()

    async with db.execute("SELECT item_index, status, drop_reason, raw FROM synth_items ORDER BY item_index") as cur:
        rows = [dict(r) for r in await cur.fetchall()]
    print("\n".join(f"--- #{r['item_index']} {r['status']} {r['drop_reason'] or ''}\n{r['raw']}" for r in rows))
    assert report.generated == 2 and report.failed == 0
    assert not report.tokens_estimated, "the local backend counts tokens with its own tokenizer"
    assert report.clean.kept >= 1, f"no parseable conversation; dropped: {dict(report.clean.dropped)}"

    sources = [s for s in await list_sources(db, "tim") if s["kind"] == "synthetic"]
    assert sources and all(s["provenance"]["model"] == EMBEDDED_MODEL for s in sources)
    for s in sources:
        turns = await source_turns(db, s["id"])
        assert len(turns) >= 2 and turns[-1].role == "assistant" and all(t.text for t in turns)
