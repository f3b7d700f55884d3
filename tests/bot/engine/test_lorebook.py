"""Lorebook selection (pure) and the engine's prompt for card personas: lore within the budget,
{{user}} resolved to the member being answered, post-history instructions after the history."""
from dataclasses import replace

import pytest

from bot.engine import ChatEngine, Turn
from bot.engine.engine import persona_prompt
from bot.engine.lorebook import lore_budget, select_lore
from bot.engine.prompt import estimate_tokens
from bot.persona.lorebook import LoreEntry, Lorebook, parse_lorebook
from bot.persona.spec import PersonaSpec
from tests.support.scripted_backend import ScriptedBackend
from tests.support.tavern_cards import BOOK


def words(text: str) -> int:
    return len(text.split())


BOOK_PARSED = parse_lorebook(BOOK)


def pick(recent, budget=1000, book=BOOK_PARSED):
    return select_lore(book, recent, budget=budget, count=words)


def test_keys_trigger_case_insensitively_and_constant_entries_always_apply():
    sel = pick(["hello", "Is the LIGHTHOUSE still working?"])
    assert sel.entries == (2, 0), "constant (order 1) then lighthouse (order 10); the disabled twin is ignored"
    assert sel.after.splitlines() == ["Always present: the harbour smells of tar.",
                                      "The lighthouse has been dark since the storm of '09."]


def test_case_sensitive_keys():
    assert 1 not in pick(["the kraken!"]).entries
    assert 1 in pick(["the Kraken!"]).entries


def test_selective_entries_need_a_secondary_key():
    assert 3 not in pick(["my ship sank"]).entries
    assert 3 in pick(["my ship sank", "near the old wreck"]).entries


def test_only_the_last_scan_depth_messages_are_scanned():
    assert 0 not in pick(["the lighthouse", "a", "b"]).entries, "scan_depth 2: the third-last message is not scanned"
    deep = replace(BOOK_PARSED, scan_depth=3)
    assert 0 in pick(["the lighthouse", "a", "b"], book=deep).entries
    none = replace(BOOK_PARSED, scan_depth=0)
    assert pick(["the lighthouse"], book=none).entries == (2,), "depth 0: constant entries only"


def test_budget_keeps_the_highest_priority_and_counts_what_was_left_out():
    recent = ["lighthouse ship wreck Kraken"]
    everything = pick(recent)
    assert set(everything.entries) == {0, 1, 2, 3}
    # Constant first (8 words), then by insertion order highest first: wreck (7), lighthouse (9), Kraken.
    sel = pick(recent, budget=8 + 7 + 9)
    assert set(sel.entries) == {2, 3, 0} and sel.over_budget == 1
    assert sum(words(t) for t in (sel.before + "\n" + sel.after).split("\n") if t) <= 24
    tiny = pick(recent, budget=3)
    assert tiny.empty and tiny.over_budget == 4


def test_priority_field_outranks_insertion_order_and_position_places_entries():
    book = Lorebook((
        LoreEntry(keys=("a",), content="low", insertion_order=50, priority=1),
        LoreEntry(keys=("a",), content="high before", insertion_order=1, priority=9, position="before_char"),
    ))
    sel = select_lore(book, ["a"], budget=2, count=words)
    assert sel.entries == (1,) and sel.before == "high before" and sel.after == ""


def test_recursive_scanning_follows_activated_content():
    book = Lorebook((
        LoreEntry(keys=("castle",), content="The castle belongs to the duke."),
        LoreEntry(keys=("duke",), content="The duke is seven years old."),
    ), recursive_scanning=True)
    assert select_lore(book, ["the castle"], budget=100, count=words).entries == (0, 1)
    flat = replace(book, recursive_scanning=False)
    assert select_lore(flat, ["the castle"], budget=100, count=words).entries == (0,)


def test_regex_keys():
    book = Lorebook((LoreEntry(keys=(r"\bdrag(on|ons)\b",), content="Dragons are extinct.", use_regex=True),))
    assert select_lore(book, ["Dragons!"], budget=100, count=words).entries == (0,)
    assert select_lore(book, ["snapdragons"], budget=100, count=words).entries == ()


def test_lore_budget_is_a_share_of_the_context_and_never_more_than_half():
    assert lore_budget(Lorebook(()), 1000) == 250
    assert lore_budget(Lorebook((), token_budget=100), 1000) == 100
    assert lore_budget(Lorebook((), token_budget=5000), 1000) == 500


# -- the engine ---------------------------------------------------------------------------------


@pytest.fixture
def mara():
    return PersonaSpec(name="mara", display_name="Captain Mara", context_budget=400,
                       system_prompt="You are Captain Mara, talking with {{user}}.",
                       post_history_instructions="Stay gruff with {{user}}; never break character.",
                       lore=BOOK_PARSED)


async def test_engine_prompt_has_lore_macros_and_post_history(mara):
    backend = ScriptedBackend(default=["Aye."])
    engine = ChatEngine(lambda p: backend)
    history = [Turn("1", "Ana", "Tell me about the lighthouse"), Turn("b", "Captain Mara", "Dark.", from_persona=True),
               Turn("2", "Ben", "And the Kraken?")]
    await engine.respond(mara, history).text()
    messages, _ = backend.calls[0]
    system = messages[0]["content"]
    assert system.startswith("You are Captain Mara, talking with Ben.\n\n"), "{{user}} is the member being answered"
    assert "Captain Mara fears the Kraken and never names it to Ben." in system, "lore macros resolved too"
    assert "the harbour smells of tar" in system
    assert "lighthouse has been dark" not in system, "scan depth 2: Ana's message is the third-last"
    assert messages[-1] == {"role": "system", "content": "Stay gruff with Ben; never break character."}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "system"]


async def test_lore_and_post_history_stay_within_the_context_budget(mara):
    backend = ScriptedBackend(default=["Aye."])
    engine = ChatEngine(lambda p: backend)
    history = [Turn("1", "Ana", f"message {i} about the lighthouse and the ship wreck " + "blah " * 40) for i in range(30)]
    await engine.respond(mara, history).text()
    messages, _ = backend.calls[0]
    assert estimate_tokens(messages) <= mara.context_budget
    assert "lighthouse has been dark" in messages[0]["content"], "lore kept; old history dropped instead"
    assert messages[-1]["role"] == "system" and "message 29 " in messages[-2]["content"]
    assert "message 0 " not in messages[-2]["content"], "the oldest turns made room"


def test_persona_without_a_card_is_unchanged(settings):
    from bot.persona import load_persona

    tim = load_persona(settings.core.resolved_personas_dir() / "tim")
    system, post = persona_prompt(tim, [Turn("1", "Sam", "hi")])
    assert system == tim.system_prompt and post == ""


def test_v3_decorators_are_taken_off_the_content():
    book = parse_lorebook({"entries": [
        {"keys": ["x"], "content": "@@depth 4\n@@activate\nAlways here."},
        {"keys": ["fog"], "content": "@@dont_activate\nNever here."},
        {"keys": ["fog"], "content": "@@role system\nFog rolls in."},
    ]})
    sel = select_lore(book, ["the fog"], budget=100, count=words)
    assert sel.after == "Always here.\nFog rolls in."
