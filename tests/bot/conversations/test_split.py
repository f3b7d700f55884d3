"""split_message: limits, word and code-fence safety."""
import pytest

from bot.conversations.split import split_message, utf16_len


def test_short_text_is_one_part():
    assert split_message("hello") == ["hello"]
    assert split_message("   ") == []


@pytest.mark.parametrize("n", [1999, 2000, 2001, 4500, 9000])
def test_parts_fit_and_words_survive(n):
    words = [f"w{i}" for i in range(n)]
    text = " ".join(words)[:n * 3]
    parts = split_message(text)
    assert all(utf16_len(p) <= 2000 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_prefers_paragraph_then_line_breaks():
    para = "a" * 1500
    parts = split_message(f"{para}\n\n{'b ' * 400}")
    assert parts[0] == para


def test_code_block_closed_and_reopened_with_language():
    code = "\n".join(f"print({i})" for i in range(400))
    parts = split_message(f"Here:\n```python\n{code}\n```\nDone.")
    assert len(parts) >= 2
    for p in parts:
        assert sum(l.startswith("```") for l in p.split("\n")) % 2 == 0
    assert all(p.startswith("```python\n") for p in parts[1:-1])
    body = [l for p in parts for l in p.split("\n") if l.startswith("print(")]
    assert body == code.split("\n")


def test_emoji_count_twice():
    text = "😀" * 1500                     # 3000 UTF-16 units
    parts = split_message(text)
    assert all(utf16_len(p) <= 2000 for p in parts) and "".join(parts) == text


def test_prefix_is_stable_while_text_grows():
    text = " ".join(f"word{i}" for i in range(1200))
    first = split_message(text[:3000])[0]
    assert split_message(text)[0] == first
