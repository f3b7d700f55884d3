"""End-to-end dataset builds against a real SQLite file: PII, leak-free split, curated logs,
synthetic silence, windows, versions and the failure paths."""
from __future__ import annotations

import json

import pytest

from tests.trainer.dataset.conftest import FRIEND, OTHER, OWNER, PLANTED, write_chat
from trainer.dataset.build import BuildError, BuildOptions, build_dataset
from trainer.dataset.ingest import OwnerNotFound, import_export
from trainer.dataset.tokens import TokenCounter
from trainer.dataset.versions import list_versions, versions_containing_member, versions_containing_source
from trainer.importers import ImportFormatError, ImportOptions
from trainer.importers.base import ParseResult, RawMessage
from trainer.sources import list_sources, save_source


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def _import(db, path, owner=(OWNER,)):
    return await import_export(db, persona="twin", kind="whatsapp", path=path, options=ImportOptions(owner=owner))


async def test_import_counts_and_reimport_is_noop(db, tmp_path):
    path = write_chat(tmp_path / "chat.txt")
    first = await _import(db, path)
    again = await _import(db, path)
    assert first.created and not again.created and again.source_id == first.source_id
    (src,) = await list_sources(db, "twin")
    assert src["counts"]["imported"] == first.counts["imported"] > 0 and src["content_hash"] == first.content_hash
    with pytest.raises(OwnerNotFound, match="Marek Lindqvist"):
        await import_export(db, persona="twin", kind="whatsapp", path=write_chat(tmp_path / "c2.txt", 3), options=ImportOptions(owner=("Olivia",)))


async def test_garbage_never_reaches_the_store(db, tmp_path):
    bad = tmp_path / "noise.txt"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ImportFormatError):
        await _import(db, bad)
    assert await list_sources(db, "twin") == []


async def test_build_scrubs_pii_and_keeps_validation_out_of_train(db, settings, tmp_path, persona):
    await _import(db, write_chat(tmp_path / "chat.txt", duplicate_last_early=True))
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(val_fraction=0.25))
    train, val = read_jsonl(result.folder / "train.jsonl"), read_jsonl(result.folder / "val.jsonl")
    assert train and val
    text = (result.folder / "train.jsonl").read_text() + (result.folder / "val.jsonl").read_text()
    for value in [*PLANTED.values(), OWNER, FRIEND, OTHER, "Marek", "Sunita", "Olivia", "Lindqvist"]:
        assert value not in text, value
    pii = result.manifest["pii"]
    assert all(pii[k] >= 1 for k in ("email", "phone", "card", "iban", "name"))
    # Group chat: speakers kept as pseudonyms; the owner's name became the persona's.
    assert "Person 1: so what about" in text and f"if {persona.display_name} drives" in text

    def topics(examples):
        return {w for ex in examples for m in ex["messages"][1:] for w in m["content"].split() if w.startswith("topic")}

    assert topics(val) and not (topics(val) & topics(train))          # no val conversation in train
    number = lambda w: int(w.strip(",")[5:])
    # 13 sessions (one a verbatim early copy of the newest), 25% -> the 4 newest go to validation.
    assert {number(w) for w in topics(val)} == {8, 9, 10, 11} and max(number(w) for w in topics(train)) == 7
    assert result.manifest["dropped"].get("train_duplicates_val") == 1  # the early verbatim copy of a val session
    for ex in train + val:
        roles = [m["role"] for m in ex["messages"]]
        assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles[1:], roles[2:]))
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["sources"][0]["content_hash"] and manifest["validation"]["ok"]
    assert set(manifest["files"]) >= {"train.jsonl", "val.jsonl"} and (result.folder / "report.md").exists()
    (row,) = await list_versions(db, "twin")
    assert row["version"] == 1 and row["status"] == "ok" and row["path"] == str(result.folder)
    assert await versions_containing_source(db, manifest["sources"][0]["id"]) == [result.dataset_id]


async def test_split_is_deterministic(db, settings, tmp_path, persona):
    await _import(db, write_chat(tmp_path / "chat.txt"))
    a = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir)
    b = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir)
    assert b.version == a.version + 1
    for name in ("train.jsonl", "val.jsonl"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes()


async def test_curated_logs_and_synthetic_silence(db, settings, tmp_path, persona):
    await db.executescript("""
        INSERT INTO members(user_id, display_name, created_at) VALUES ('m1', 'Quinn Harlow', 'now'), ('m2', 'Rae Voss', 'now');
        INSERT INTO consent(user_id, status, policy_version, updated_at) VALUES ('m1', 'opted_in', '1', 'now'), ('m2', 'opted_in', '1', 'now');
        INSERT INTO conversations(id, persona, key, started_at) VALUES (1, 'twin', 'discord:1', '2024-01-01T10:00:00+00:00');
        INSERT INTO messages(conversation_id, role, author_id, content, created_at, curation_status) VALUES
          (1, 'user', 'm1', 'hello twin, I am Quinn Harlow', '2024-01-01T10:00:00+00:00', 'pending'),
          (1, 'assistant', 'm1', 'hi there', '2024-01-01T10:00:05+00:00', 'approved');
        INSERT INTO messages(conversation_id, role, author_id, content, corrected_content, created_at, curation_status) VALUES
          (1, 'user', 'm1', 'what is 2+2', NULL, '2024-01-01T10:01:00+00:00', 'pending'),
          (1, 'assistant', 'm1', 'five', 'four, obviously', '2024-01-01T10:01:05+00:00', 'corrected'),
          (1, 'user', 'm1', 'and 3+3?', NULL, '2024-01-01T10:02:00+00:00', 'pending'),
          (1, 'assistant', 'm1', 'REJECTED REPLY', NULL, '2024-01-01T10:02:05+00:00', 'rejected'),
          (1, 'user', 'm2', 'dangling question', NULL, '2024-01-01T10:03:00+00:00', 'pending');
    """)
    synthetic = ParseResult(owner_ids={"tim"}, messages=[
        RawMessage("s1", 0, None, "kid", "kid", "i'm bored"), RawMessage("s1", 1, None, "tim", "tim", "Want a riddle?"),
        RawMessage("s1", 2, None, "kid", "kid", "whatever"), RawMessage("s1", 3, None, "tim", "tim", "", kind="silence"),
    ] + [RawMessage(f"s{i}", j, None, who, who, f"synthetic {i} {j} {who} talk about planets") for i in range(2, 6)
         for j, who in enumerate(["kid", "tim"])])
    await save_source(db, persona="twin", kind="synthetic", label="gen", content_hash="synthetic-1", result=synthetic)
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(val_fraction=0.01))
    examples = read_jsonl(result.folder / "train.jsonl") + read_jsonl(result.folder / "val.jsonl")
    text = json.dumps(examples, ensure_ascii=False)
    assert "four, obviously" in text, text
    for absent in ('"five"', "REJECTED", "dangling question"):
        assert absent not in text, (absent, text)
    assert "Quinn" not in text
    silent = [ex for ex in examples if ex["messages"][-1] == {"role": "assistant", "content": ""}]
    assert len(silent) == 1 and silent[0]["messages"][-2]["content"] == "whatever"
    assert await versions_containing_member(db, "m1") == [result.dataset_id]
    assert result.manifest["curated"]["threads"] == 1
    assert result.manifest["curated"]["by_status"] == {"pending": 0, "approved": 1, "rejected": 1, "corrected": 1,
                                                        "out_of_scope": 0, "not_opted_in": 0}
    assert "1 approved and 1 corrected" in (result.folder / "report.md").read_text()


async def test_long_conversations_split_between_turns(db, settings, tmp_path, persona):
    rows = []
    for i in range(40):
        rows.append(RawMessage("c", 2 * i, None, "u", "u", f"question number {i} " + "word " * 30))
        rows.append(RawMessage("c", 2 * i + 1, None, "a", "a", f"answer number {i} " + "reply " * 30))
    await save_source(db, persona="twin", kind="jsonl", label="long", content_hash="long",
                      result=ParseResult(messages=rows, owner_ids={"a"}))
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(max_tokens=400, val_fraction=0))
    train = read_jsonl(result.folder / "train.jsonl")
    counter = TokenCounter()
    assert len(train) > 5
    trained = []
    for ex in train:
        assert counter.count_chat(ex["messages"]) <= 400
        trained += [m["content"] for m in ex["messages"] if m["role"] == "assistant" and m.get("weight", 1) == 1]
    assert sorted(trained) == sorted(m.text.rstrip() for m in rows if m.sender_id == "a")   # every reply trained once, whole


async def test_build_without_data_fails_cleanly(db, settings, persona):
    with pytest.raises(BuildError, match="no usable conversations"):
        await build_dataset(db, persona=persona, data_dir=settings.core.data_dir)
    assert not (settings.core.data_dir / "datasets" / "twin").exists() or not any((settings.core.data_dir / "datasets" / "twin").iterdir())
    assert await list_versions(db) == []


async def test_hf_format_and_axolotl_snippet(db, settings, tmp_path, persona):
    await _import(db, write_chat(tmp_path / "chat.txt", 6))
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(hf=True))
    from datasets import load_from_disk

    ds = load_from_disk(str(result.folder / "hf"))
    assert ds["train"].num_rows == result.manifest["counts"]["train_examples"]
    assert "type: chat_template" in (result.folder / "axolotl.yml").read_text()


async def test_role_labels_of_synthetic_sources_are_not_pseudonymised(db, settings, persona):
    """"User" in a synthetic transcript is a role, not a person: it must survive PII scrubbing."""
    synthetic = ParseResult(owner_ids={"Twin"}, participants={"User": "User", "Twin": "Twin"}, messages=[
        RawMessage(f"c{i}", j, None, who, who, text)
        for i in range(4)
        for j, (who, text) in enumerate([("User", f"my cat {i} is sick"), ("Twin", f"sorry to hear that, User {i}")])
    ])
    await save_source(db, persona="twin", kind="synthetic", label="gen", content_hash="roles-1", result=synthetic)
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(val_fraction=0.25))
    text = (result.folder / "train.jsonl").read_text() + (result.folder / "val.jsonl").read_text()
    assert "sorry to hear that, User" in text
    assert "Person 1" not in text


async def test_phone_region_from_import_option_export_hint_and_build_option(db, settings, tmp_path, persona):
    """A national-format number is found with the source's region: `import --region`, the export's
    own hint (participants shown by their +CC number), or `dataset build --region` over both."""
    uk, es = "020 7946 0018", "612 34 56 78"
    lines = []
    for k, (friend, number) in enumerate([(FRIEND, uk), ("+34 612 34 56 79", es)]):
        lines += [f"0{k + 1}/03/2023, 10:00 - {friend}: hi there, ring me on {number} tonight",
                  f"0{k + 1}/03/2023, 10:01 - {OWNER}: will do, talk later then"]
    (tmp_path / "a.txt").write_text(lines[0] + "\n" + lines[1] + "\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text(lines[2] + "\n" + lines[3] + "\n", encoding="utf-8")
    first = await import_export(db, persona="twin", kind="whatsapp", path=tmp_path / "a.txt",
                                options=ImportOptions(owner=(OWNER,), region="GB"))
    second = await _import(db, tmp_path / "b.txt")
    assert (first.region, first.region_from) == ("GB", "--region")
    assert (second.region, second.region_from) == ("ES", "participants' numbers")
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(val_fraction=0.0, dedup=False))
    text = (result.folder / "train.jsonl").read_text()
    assert uk not in text and es not in text and text.count("[PHONE]") == 2
    assert result.manifest["phone_regions"] == {str(first.source_id): "GB", str(second.source_id): "ES"}
    # Forced to GB for every source: the manifest says so, and the Spanish mobile (no trunk 0) is
    # still caught, as a number grouped exactly as Spain writes them.
    forced = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir,
                                 options=BuildOptions(val_fraction=0.0, dedup=False, region="GB"))
    assert set(forced.manifest["phone_regions"].values()) == {"GB"}
    assert es not in (forced.folder / "train.jsonl").read_text()


async def test_a_card_s_user_macro_is_the_member_label_in_training_examples(db, settings, tmp_path, persona):
    # A card's system prompt keeps `{{user}}` for serving (the member answered); with no member in a
    # training example it must read as the persona's user label, never as the literal macro.
    card_persona = persona.model_copy(update={"system_prompt": "You are {{char}}. Be kind to {{user}}, always."})
    await _import(db, write_chat(tmp_path / "chat.txt"))
    result = await build_dataset(db, persona=card_persona, data_dir=settings.core.data_dir, options=BuildOptions())
    systems = {ex["messages"][0]["content"] for ex in read_jsonl(result.folder / "train.jsonl")}
    assert systems == {f"You are {persona.display_name}. Be kind to {persona.user_label}, always."}
