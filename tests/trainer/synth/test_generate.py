"""End-to-end generation through the Backend seam: clean-up, drop counts, storage, resume, retries."""
from __future__ import annotations

import json
import re

import pytest

from bot.backends.base import BackendError
from trainer.sources import iter_source_messages, list_sources
from trainer.synth import RunOptions, SynthAborted, load_catalog, run_synth
from trainer.synth.store import kept_sources, source_turns

from .conftest import ScriptedBackend
from .scripts import SCRIPT, TWIN_SILENCE, varied

LABEL_START = re.compile(r"^\W*(user|usr|tim|eve|tutor|assistant)\W*:", re.IGNORECASE)
FAST = dict(backoff_s=0.001, concurrency=3)


def scripted_for(plan, texts):
    return {item.seed: text for item, text in zip(plan, texts)}


async def test_failure_modes_are_cleaned_and_counted(db, tim):
    catalog = load_catalog(tim)
    plan = catalog.plan(len(SCRIPT), seed=11)
    backend = ScriptedBackend(scripted_for(plan, [t for _, t, _ in SCRIPT]))

    report = await run_synth(db, backend, tim, catalog, RunOptions(count=len(SCRIPT), seed=11, other_personas=("EVE", "Twin"), **FAST))

    expected_drops = {reason: 1 for _, _, reason in SCRIPT if reason}
    assert dict(report.clean.dropped) == expected_drops
    assert report.clean.kept == 2 and report.generated == len(SCRIPT) and report.failed == 0
    assert report.clean.merged >= 2 and report.clean.trimmed == 1 and report.clean.renamed >= 1 and report.clean.collapsed == 1

    sources = [s for s in await list_sources(db, "tim") if s["kind"] == "synthetic"]
    assert len(sources) == 2
    for source in sources:
        prov = source["provenance"]
        assert {"template_hash", "topic", "profile", "model", "sampling", "seed"} <= prov.keys()
        assert prov["model"] == "scripted-writer" and prov["sampling"]["temperature"] == tim.synthetic.temperature
        turns = await source_turns(db, source["id"])
        roles = [t.role for t in turns]
        assert roles[-1] == "assistant", "ends on the persona"
        assert all(a != b for a, b in zip(roles, roles[1:])), "no speaker twice in a row"
        for t in turns:
            assert t.text and not LABEL_START.match(t.text), t.text
            assert "EVE" not in t.text and "As an AI" not in t.text and "TIM:" not in t.text
        async for is_owner, m in iter_source_messages(db, source["id"]):
            assert is_owner == (m.sender_id == "assistant")
            assert m.sender_name in ("TIM", "User")

    # Every planned item is recorded with its outcome and provenance.
    async with db.execute("SELECT status, drop_reason, template_hash, topic, profile, model, sampling, item_seed FROM synth_items ORDER BY item_index") as cur:
        rows = await cur.fetchall()
    assert [r["drop_reason"] for r in rows] == [reason for _, _, reason in SCRIPT]
    assert all(r["template_hash"] and r["topic"] and r["profile"] and json.loads(r["sampling"])["seed"] == r["item_seed"] for r in rows)


async def test_rerun_after_interruption_generates_only_what_is_missing(db, tim):
    catalog = load_catalog(tim)
    count = 12
    plan = catalog.plan(count, seed=5)
    texts = {item.seed: varied(i) for i, item in enumerate(plan)}
    first = ScriptedBackend(texts, fail_after=5)
    with pytest.raises(SynthAborted) as info:
        await run_synth(db, first, tim, catalog, RunOptions(count=count, seed=5, max_retries=0, backoff_s=0.001, concurrency=1))
    assert info.value.report.aborted
    async with db.execute("SELECT count(*) FROM synth_items") as cur:
        (done,) = await cur.fetchone()
    assert done == 5

    second = ScriptedBackend(texts)
    report = await run_synth(db, second, tim, catalog, RunOptions(count=count, seed=5, **FAST))
    assert len(second.calls) == count - done
    assert sorted(second.calls) == sorted(item.seed for item in plan[done:])
    assert report.already_done == done and report.generated == count - done

    third = ScriptedBackend(texts)
    report = await run_synth(db, third, tim, catalog, RunOptions(count=count + 3, seed=5, **FAST))
    assert len(third.calls) == 3, "a larger count only adds the new items"
    assert report.already_done == count


async def test_transcripts_stored_before_an_interruption_are_not_paid_for_twice(db, tim):
    catalog = load_catalog(tim)
    plan = catalog.plan(3, seed=8)
    texts = {item.seed: varied(i) for i, item in enumerate(plan)}
    # Item 0 fails for good after its siblings were generated: 1 and 2 are stored as 'generated'.
    first = ScriptedBackend({**texts, plan[0].seed: BackendError("scripted: overloaded")}, delays={plan[0].seed: 0.3})
    with pytest.raises(SynthAborted):
        await run_synth(db, first, tim, catalog, RunOptions(count=3, seed=8, max_retries=0, backoff_s=0.001, concurrency=3, max_consecutive_failures=1))
    async with db.execute("SELECT status FROM synth_items ORDER BY item_index") as cur:
        assert [r["status"] for r in await cur.fetchall()] == ["generated", "generated"]
    second = ScriptedBackend(texts)
    report = await run_synth(db, second, tim, catalog, RunOptions(count=3, seed=8, **FAST))
    assert second.calls == [plan[0].seed]
    assert report.reused == 2 and report.clean.kept == 3


async def test_retries_with_backoff_then_failure_is_left_for_the_next_run(db, tim):
    catalog = load_catalog(tim)
    plan = catalog.plan(2, seed=3)
    flaky = [BackendError("scripted: 503"), BackendError("scripted: 503"), SCRIPT[0][1]]
    dead = BackendError("scripted: 503")
    backend = ScriptedBackend({plan[0].seed: flaky, plan[1].seed: dead})
    report = await run_synth(db, backend, tim, catalog, RunOptions(count=2, seed=3, max_retries=2, backoff_s=0.001))
    assert backend.attempts == {plan[0].seed: 3, plan[1].seed: 3}
    assert report.retries == 4 and report.failed == 1 and report.clean.kept == 1

    again = ScriptedBackend({plan[1].seed: varied(1)})
    report = await run_synth(db, again, tim, catalog, RunOptions(count=2, seed=3, backoff_s=0.001))
    assert again.calls == [plan[1].seed] and report.clean.kept == 1


async def test_same_seed_gives_the_same_conversations(settings, tim, tmp_path):
    from bot.store import open_db

    outputs = []
    for run in range(2):
        async with open_db(tmp_path / f"run{run}.db") as db:
            catalog = load_catalog(tim)
            plan = catalog.plan(3, seed=21)
            backend = ScriptedBackend(scripted_for(plan, [SCRIPT[0][1], SCRIPT[2][1], SCRIPT[6][1].replace("[silence]", "Okay.")]))
            await run_synth(db, backend, tim, catalog, RunOptions(count=3, seed=21, **FAST))
            ids = await kept_sources(db, "tim", [i.key for i in plan])
            outputs.append([await source_turns(db, i) for i in ids])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    # TIM's style augmentation roughened user turns and left TIM's alone.
    original_user = "Why is the sky blue?"
    assert any(t.text != original_user and t.text.lower().startswith("why is") for t in outputs[0][1] if t.role == "user")
    assert any(t.text.startswith("Sunlight is made of many colours.") for t in outputs[0][1] if t.role == "assistant")


async def test_silence_is_kept_for_personas_that_may_stay_silent(db, twin, tmp_path):
    from trainer.synth import export_jsonl

    catalog = load_catalog(twin)
    plan = catalog.plan(1, seed=2)
    backend = ScriptedBackend({plan[0].seed: TWIN_SILENCE})
    report = await run_synth(db, backend, twin, catalog, RunOptions(count=1, seed=2, **FAST))
    assert report.clean.kept == 1 and report.clean.silence_turns == 1
    (source_id,) = await kept_sources(db, "twin", [plan[0].key])
    messages = [m async for _, m in iter_source_messages(db, source_id)]
    silent = [m for m in messages if m.kind == "silence"]
    assert len(silent) == 1 and silent[0].text == "" and silent[0].sender_id == "assistant"

    out = tmp_path / "twin.jsonl"
    assert await export_jsonl(db, twin, [source_id], out) == 1
    example = json.loads(out.read_text())
    assert example["messages"][0] == {"role": "system", "content": twin.system_prompt}
    assert {"role": "assistant", "content": ""} in example["messages"]
    assert example["messages"][-1]["role"] == "assistant" and example["messages"][-1]["content"]


async def test_non_retryable_error_stops_the_run_with_a_clear_message(db, tim):
    catalog = load_catalog(tim)
    backend = ScriptedBackend(fail_after=0)
    with pytest.raises(SynthAborted, match="refused the request.*BackendAuthError"):
        await run_synth(db, backend, tim, catalog, RunOptions(count=2, seed=1, **FAST))


async def test_the_writer_continues_a_template_opening(db, tmp_path):
    from bot.persona import load_persona

    from .conftest import persona_copy

    folder = persona_copy(tmp_path, "tim")
    for t in (folder / "templates").glob("*.txt"):
        t.unlink()
    (folder / "templates" / "open.txt").write_text("About {topic}; the user is {user_profile}.\n=== opening ===\n{user}: Hi {persona}!\n{persona}:\n")
    tim = load_persona(folder)
    catalog = load_catalog(tim)
    plan = catalog.plan(1, seed=4)
    backend = ScriptedBackend({plan[0].seed: "Hello! What shall we learn?\nUser: fractions\nTIM: Great, let us start with halves."})
    report = await run_synth(db, backend, tim, catalog, RunOptions(count=1, seed=4, **FAST))
    assert report.clean.kept == 1
    (source_id,) = await kept_sources(db, "tim", [plan[0].key])
    turns = await source_turns(db, source_id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1].text == "Hello! What shall we learn?"
