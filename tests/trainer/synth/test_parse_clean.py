"""Transcript parsing and clean-up, one behaviour at a time."""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from trainer.synth.clean import Cleaner, find_refusal, find_repetition
from trainer.synth.parse import ASSISTANT, USER, Speakers, parse_transcript

SPEAKERS = Speakers("TIM", "User", persona_labels=("Tim", "Assistant", "Tutor"), user_labels=("Usr", "Human"), other_personas=("EVE",))


@pytest.mark.parametrize("line", [
    "TIM: hello", "Tim: hello", "tim: hello", "TIM : hello", "**TIM:** hello", "**TIM**: hello", "__TIM__: hello",
    "- TIM: hello", "> TIM: hello", "  TIM:hello", "EVE: hello", "Eve: hello", "Tutor: hello", "ASSISTANT: hello",
])
def test_persona_label_variants(line):
    parsed = parse_transcript(f"User: hi\n{line}", SPEAKERS)
    assert [(t.role, t.text) for t in parsed.turns] == [(USER, "hi"), (ASSISTANT, "hello")]


@pytest.mark.parametrize("line", ["User: yo", "user: yo", "USER : yo", "**User:** yo", "Usr: yo", "Human: yo"])
def test_user_label_variants(line):
    parsed = parse_transcript(f"{line}\nTIM: hi", SPEAKERS)
    assert parsed.turns[0] == parsed.turns[0].__class__(USER, "yo", False, 1)


def test_unknown_labels_and_emphasis_are_content():
    parsed = parse_transcript("User: list?\nTIM: Sure.\nNote: this is TIM's note.\n-Class 1: intro\nTIM: *smiles* ok", SPEAKERS)
    assert parsed.turns[1].text == "Sure.\nNote: this is TIM's note.\n-Class 1: intro\n*smiles* ok"
    assert parsed.merged == 1


def test_other_persona_names_are_normalised_in_labels_and_text():
    parsed = parse_transcript("User: Hey EVE, how are you?\nEVE: I'm EVE... I mean, fine.\nUser: Christmas Eve is soon", SPEAKERS)
    assert [t.text for t in parsed.turns] == ["Hey TIM, how are you?", "I'm TIM... I mean, fine.", "Christmas Eve is soon"]
    assert parsed.relabelled == 1 and parsed.renamed == 2


def test_doubled_labels_collapse_but_crossed_labels_leak():
    parsed = parse_transcript("User: hi\nTIM: TIM: **TIM:** hello\nUser: User: ok\nTIM: User: what?", SPEAKERS)
    assert [t.text for t in parsed.turns] == ["hi", "hello", "ok", "User: what?"]
    assert parsed.collapsed == 3


def test_silence_markers():
    for marker in ("[silence]", "(silence)", "*stays silent*", "[no reply]", "", "<silence>"):
        parsed = parse_transcript(f"User: hi\nTIM: {marker}\nUser: ?\nTIM: ok", SPEAKERS)
        assert parsed.turns[1].silence and parsed.turns[1].text == "", marker
    assert not parse_transcript("User: hi\nTIM: silence is golden", SPEAKERS).turns[1].silence


def test_preamble_separators_and_trailing_user_turn():
    c = Cleaner(SPEAKERS, min_turns=2)
    out = c.clean("Here you go!\n\nUser: a\n\nTIM: b\n\n---\nUser: c\n```")
    assert [(t.role, t.text) for t in out.turns] == [(USER, "a"), (ASSISTANT, "b")]
    assert c.stats.trimmed == 1 and c.stats.preambles == 1


@pytest.mark.parametrize("text,reason", [
    ("User: hi\nTIM: As an AI language model, I can't.\nUser: ok\nTIM: ok", "refusal"),
    ("I'm sorry, but I can't help with that request.", "refusal"),
    ("User: hi\nTIM: hello", "too_few_turns"),
    ("just prose, no labels at all", "too_few_turns"),
    ("User: hi\nTIM:\nUser: hello?\nTIM: hi", "empty_turn"),
    ("User:\nTIM: hi\nUser: hello?\nTIM: hi", "empty_turn"),
    ("User: hi\nTIM: [silence]\nUser: hello?\nTIM: hi", "empty_turn"),
    ("User: hi TIM: hi\nTIM: yes\nUser: ok\nTIM: fine", "leaked_label"),
    ("User: hi\nTIM: yes. EVE: also yes\nUser: ok\nTIM: fine", "leaked_label"),
    ("User: hi\nTIM: " + "ha ha " * 10 + "\nUser: ok\nTIM: fine", "repetition"),
    ("User: ok\nTIM: Tell me more.\nUser: ok\nTIM: Tell me more.\nUser: ok\nTIM: Tell me more.", "repetition"),
])
def test_drop_reasons(text, reason):
    c = Cleaner(SPEAKERS)
    out = c.clean(text)
    assert out.reason == reason, out
    assert c.stats.dropped == {reason: 1} and c.stats.kept == 0


def test_silence_allowed_but_not_only_silence():
    c = Cleaner(SPEAKERS, allow_silence=True)
    assert c.clean("User: hi\nTIM: [silence]\nUser: hello?\nTIM: hi").kept
    assert c.clean("User: a\nTIM: [silence]\nUser: b\nTIM: [silence]").reason == "all_silent"


def test_near_duplicates_across_remembered_conversations():
    base = "User: How do magnets work?\nTIM: Tiny regions inside iron line up so their magnetic fields add together.\n" \
           "User: Why does a fridge magnet stick?\nTIM: The door is steel, and steel contains iron the magnet can pull on.\n" \
           "User: Can a magnet lose its power?\nTIM: Yes, heat or a hard knock can jumble those regions again."
    first = Cleaner(SPEAKERS)
    kept = first.clean(base)
    second = Cleaner(SPEAKERS)
    second.remember(kept.turns)
    assert second.clean(base.replace("Yes, heat", "Yes: heat")).reason == "near_duplicate"
    # One word fewer (Jaccard ~0.98 over word 3-shingles): MinHash, not exact matching, catches it.
    assert second.clean(base.replace(" regions again.", " regions.")).reason == "near_duplicate"


def test_ordinary_text_is_not_flagged():
    assert find_refusal("As an athlete, I train daily. I'm an AI tutor, and I care how you feel.") is None
    assert find_repetition("Practice makes progress. Try one problem, then another, then check both answers carefully.") is None
    assert find_repetition("no no no no, that's not it") is None


_text = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters=" .,?!'"), min_size=1, max_size=40) \
    .map(str.strip).filter(lambda s: s and ":" not in s)
_label = st.sampled_from(["{}:", "{} :", "**{}:**", "**{}**:", "- {}:"])


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _text, _label, st.sampled_from([str, str.upper, str.lower])), min_size=1, max_size=8))
def test_any_label_style_round_trips(turns):
    lines = [fmt.format(case("TIM" if persona else "User")) + " " + text for persona, text, fmt, case in turns]
    parsed = parse_transcript("\n".join(lines), Speakers("TIM", "User"))
    expected: list[tuple[str, str]] = []
    for persona, text, _, _ in turns:
        role = ASSISTANT if persona else USER
        if expected and expected[-1][0] == role:
            expected[-1] = (role, expected[-1][1] + "\n" + text)
        else:
            expected.append((role, text))
    got = [(t.role, t.text) for t in parsed.turns]
    # Silence markers are a persona-side feature; plain words never look like one.
    assert got == expected
