"""Prompt assembly under a token budget."""
import re

from bot.engine.prompt import build_messages, estimate_tokens, render_turns
from bot.engine.types import Turn


def word_counter(messages):
    """A deterministic stand-in tokenizer: one token per word plus 3 per message."""
    return sum(3 + len(m["content"].split()) for m in messages)


def turns_from(pairs):
    return [Turn("u1" if who == "User" else "bot", who, text, from_persona=(who == "TIM")) for who, text in pairs]


def test_everything_fits_when_budget_allows():
    history = turns_from([("User", "hi"), ("TIM", "hello"), ("User", "what is DNA?")])
    msgs, kept = build_messages("You are TIM.", history, 1000, word_counter)
    assert kept == 3
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[-1]["content"] == "what is DNA?"


def test_oldest_dropped_first_and_within_budget():
    history = turns_from([("User", f"message number {i} " + "word " * 20) if i % 2 == 0 else ("TIM", "reply " * 20)
                          for i in range(30)])
    msgs, kept = build_messages("You are TIM.", history, 150, word_counter)
    assert word_counter(msgs) <= 150
    assert 0 < kept < 30
    assert msgs[1]["role"] == "user"             # history never opens on an assistant turn
    assert msgs[-1]["content"] == history[-1].content  # the newest turn is always there


def test_single_huge_message_is_cut_from_the_front():
    history = [Turn("u1", "User", " ".join(f"w{i}" for i in range(2000)))]
    msgs, kept = build_messages("You are TIM.", history, 200, word_counter)
    assert kept == 1
    assert word_counter(msgs) <= 200
    assert msgs[-1]["content"].endswith("w1999")


def test_group_chats_name_speakers_and_merge_runs():
    history = [Turn("a", "Ana", "hi"), Turn("b", "Ben", "hey"), Turn("bot", "TIM", "Hello both!", True)]
    rendered = render_turns(history)
    assert rendered == [{"role": "user", "content": "Ana: hi\nBen: hey"}, {"role": "assistant", "content": "Hello both!"}]


def test_budget_trimming_on_real_transcript(shared_dir):
    path = sorted((shared_dir / "data" / "tutorchatbot" / "convos").glob("*.txt"))[0]
    pairs = re.findall(r"^(User|TIM):\s*(.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    history = turns_from(pairs)
    assert len(history) >= 4
    full, _ = build_messages("You are TIM.", history, 100_000, word_counter)
    tight_budget = word_counter(full) // 2
    msgs, kept = build_messages("You are TIM.", history, tight_budget, word_counter)
    assert word_counter(msgs) <= tight_budget
    assert kept < len(history)
    assert msgs[-1]["content"] == history[-1].content or history[-1].from_persona


def test_estimate_is_monotonic():
    assert estimate_tokens([{"content": "a" * 400}]) > estimate_tokens([{"content": "a" * 40}])


def test_a_conversation_the_persona_opened_keeps_its_opening_after_a_new_chat_line():
    from bot.engine.prompt import NEW_CHAT

    history = turns_from([("TIM", "Welcome! What shall we study?"), ("User", "cells please")])
    msgs, kept = build_messages("You are TIM.", history, 1000, word_counter)
    assert kept == 2
    assert [(m["role"], m["content"]) for m in msgs[1:]] == [
        ("user", NEW_CHAT), ("assistant", "Welcome! What shall we study?"), ("user", "cells please")]
    # Trimmed so that a reply lost its question: that reply goes, no marker is made up.
    long = turns_from([("User", "old " * 50), ("TIM", "answer " * 5), ("User", "new question")])
    msgs, kept = build_messages("You are TIM.", long, 30, word_counter)
    assert [m["role"] for m in msgs] == ["system", "user"] and NEW_CHAT not in str(msgs)
