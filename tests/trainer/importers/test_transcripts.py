"""The `transcripts` importer: plain-text transcripts through the synthetic clean-up."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from trainer.importers import ImportFormatError, ImportOptions, get_importer
from trainer.importers.transcripts import TranscriptsImporter
from trainer.sources import iter_source_messages, save_source

LABEL_START = re.compile(r"^\W*(user|usr|tim|eve|tutor|assistant|human)\s*\**\s*:", re.IGNORECASE)
LABEL_INSIDE = re.compile(r"(EVE|TIM|User)\s*:(\s|$)")  # "Hey TIM:)" is a smiley, not a label
TIM_ROLES = ImportOptions(owner=("TIM",), speaker_roles={"User": "user", "EVE": "assistant"})

GOOD = "User: Hey EVE, what is 2+2?\n\nEVE: Four. What do you think 2+3 is?\n\nUser: five\nUser: right?\n\nTIM: Right!\n\nUser: thanks\n"
SHORT = "User: hi\n\nTIM: hello\n"
LEAK = "User: Hey TIMTIM: Hi there!\n\nUser: what is a verb\n\nTIM: A doing word.\n\nUser: ok\n\nTIM: Try one.\n"
REFUSAL = "User: hi\nTIM: As an AI language model, I cannot do that.\nUser: ok\nTIM: ok\n"


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "convos"
    (root / "sub").mkdir(parents=True)
    (root / "a_good.txt").write_text(GOOD, encoding="utf-8")
    (root / "b_short.txt").write_text(SHORT, encoding="utf-8")
    (root / "sub" / "c_leak.txt").write_text(LEAK, encoding="utf-8")
    (root / "d_refusal.txt").write_text(REFUSAL, encoding="utf-8")
    (root / "e_dup.txt").write_text(GOOD.replace("five", "Five"), encoding="utf-8")
    (root / "f_empty.txt").write_text("\n", encoding="utf-8")
    (root / "g_latin1.txt").write_bytes("User: caf\xe9\nTIM: oui\n".encode("latin-1"))
    (root / "notes.md").write_text("User: ignored, not a .txt\nTIM: yes", encoding="utf-8")
    return root


def test_registered_under_its_kind():
    assert isinstance(get_importer("transcripts"), TranscriptsImporter)


def test_folder_import_cleans_and_counts_every_drop(folder):
    result, stats = TranscriptsImporter().parse_with_stats(folder, TIM_ROLES)
    assert result.skipped == {"too_few_turns": 1, "leaked_label": 1, "refusal": 1, "near_duplicate": 1, "empty": 1, "unreadable": 1}
    assert stats.kept == 1 and stats.merged == 1 and stats.trimmed == 1 and result.merged == 1
    assert [(m.sender_id, m.sender_name, m.text) for m in result.messages] == [
        ("user", "User", "Hey TIM, what is 2+2?"),
        ("assistant", "TIM", "Four. What do you think 2+3 is?"),
        ("user", "User", "five\nright?"),
        ("assistant", "TIM", "Right!"),
    ]
    assert {m.conversation for m in result.messages} == {"a_good.txt"}
    where = {p.file: (p.location, p.reason) for p in result.problems}
    assert where["sub/c_leak.txt"][0] == "line 1" and where["sub/c_leak.txt"][1].startswith("leaked_label")
    assert "not UTF-8" in where["g_latin1.txt"][1] and where["f_empty.txt"][1] == "empty file"
    assert result.owner_ids == {"assistant"} and result.participants == {"user": "User", "assistant": "TIM"}


def test_speaker_labels_are_inferred_without_options(folder):
    result = TranscriptsImporter().parse(folder, ImportOptions())
    names = {m.sender_name for m in result.messages if m.sender_id == "assistant"}
    assert len(names) == 1 and names <= {"TIM", "EVE"}


def test_custom_speaker_roles(tmp_path):
    path = tmp_path / "coach.txt"
    path.write_text("Client: I keep procrastinating.\nCoach: What is the smallest next step?\nClient: open the file\n"
                    "Coach: Do that now, and tell me when it is open.\n", encoding="utf-8")
    result = TranscriptsImporter().parse(path, ImportOptions(owner=("EVE",), speaker_roles={"Client": "user", "Coach": "assistant"}))
    assert [(m.sender_name, m.text[:10]) for m in result.messages] == [
        ("Client", "I keep pro"), ("EVE", "What is th"), ("Client", "open the f"), ("EVE", "Do that no")]


def test_silence_is_kept_only_when_allowed(tmp_path):
    path = tmp_path / "twin.txt"
    path.write_text("Friend: lol\nTwin: haha\nFriend: spam spam\nTwin: [silence]\nFriend: ok bye\nTwin: bye!\n", encoding="utf-8")
    options = ImportOptions(owner=("Twin",), speaker_roles={"Friend": "user"})
    assert TranscriptsImporter().parse(path, options).skipped == {"empty_turn": 1}
    result = TranscriptsImporter(allow_silence=True).parse(path, options)
    assert [(m.kind, m.text) for m in result.messages if m.sender_id == "assistant"] == [("text", "haha"), ("silence", ""), ("text", "bye!")]
    # What `personabot import` does for a persona that may stay silent.
    from dataclasses import replace
    via_options = TranscriptsImporter().parse(path, replace(options, allow_silence=True))
    assert [(m.kind, m.text) for m in via_options.messages] == [(m.kind, m.text) for m in result.messages]


@pytest.mark.parametrize("make,message", [
    (lambda p: p, "no .txt transcripts"),
    (lambda p: (p / "x.txt").write_text("just some notes\nwithout speakers\n") and p, "no file has speaker labels"),
    (lambda p: (p / "x.json").write_text("{}") and p / "x.json", "expected a .txt transcript"),
])
def test_not_transcripts_at_all(tmp_path, make, message):
    with pytest.raises(ImportFormatError, match=message):
        TranscriptsImporter().parse(make(tmp_path), ImportOptions())


def test_bad_speaker_role(tmp_path):
    (tmp_path / "x.txt").write_text(SHORT)
    with pytest.raises(ImportFormatError, match="must be 'user' or 'assistant'"):
        TranscriptsImporter().parse(tmp_path, ImportOptions(speaker_roles={"User": "human"}))


async def test_saved_as_a_source(db, folder):
    result = TranscriptsImporter().parse(folder, TIM_ROLES)
    saved = await save_source(db, persona="tim", kind="transcripts", label=str(folder), content_hash="h1", result=result)
    rows = [(owner, m.sender_id) async for owner, m in iter_source_messages(db, saved.id)]
    assert rows == [(False, "user"), (True, "assistant"), (False, "user"), (True, "assistant")]
    assert saved.counts["skipped_total"] == 6 and saved.counts["merged"] == 1


def test_tutorchatbot_corpus(shared_dir):
    corpus = shared_dir / "data" / "tutorchatbot" / "convos"
    assert corpus.is_dir(), f"{shared_dir} has no data/tutorchatbot/convos folder"
    files = sorted(corpus.glob("*.txt"))
    result, stats = TranscriptsImporter().parse_with_stats(corpus, TIM_ROLES)
    counts = stats.as_dict()
    print(f"\nTutorChatbot import: {len(files)} files, kept {counts['kept']}, merged {counts['merged']}, "
          f"trimmed {counts['trimmed']}, relabelled {counts['relabelled']}, renamed {counts['renamed']}, "
          f"dropped {counts['dropped']} (total {counts['dropped_total']})")

    assert counts["kept"] + counts["dropped_total"] == len(files)
    assert counts["kept"] >= 0.8 * len(files)
    assert result.skipped == counts["dropped"] and result.merged == counts["merged"]
    assert {"too_few_turns", "near_duplicate", "leaked_label"} <= counts["dropped"].keys()
    assert counts["merged"] > 0 and counts["renamed"] > 0 and counts["relabelled"] > 0

    by_conversation: dict[str, list] = {}
    for m in result.messages:
        by_conversation.setdefault(m.conversation, []).append(m)
    assert len(by_conversation) == counts["kept"]
    for conversation, messages in by_conversation.items():
        assert messages[-1].sender_id == "assistant", conversation
        assert len(messages) >= 4
        for a, b in zip(messages, messages[1:]):
            assert a.sender_id != b.sender_id, conversation
        for m in messages:
            assert m.text and not LABEL_START.match(m.text), (conversation, m.text[:60])
            assert m.sender_name in ("TIM", "User")
            assert not LABEL_INSIDE.search(m.text), (conversation, m.text[:60])
    assert Counter(m.sender_id for m in result.messages)["assistant"] > 1000
    # The known defect of the corpus ("User: Hey TIMTIM: Hey there!") is dropped, not imported.
    assert any(p.file == "userissupposedt_1652573004.4546354.txt" and "leaked_label" in p.reason for p in result.problems)
