"""StreamCleaner: label leakage and stop sequences, whole and split across arbitrary deltas."""
import pytest

from bot.engine.cleanup import StreamCleaner


def clean(raw_chunks, **kw):
    c = StreamCleaner(own_labels=kw.get("own", ["TIM", "Tim"]), other_labels=kw.get("other", ["User"]),
                      stops=kw.get("stops", []))
    shown = []
    for chunk in raw_chunks:
        shown.append(c.feed(chunk))
    shown.append(c.finish())
    assert "".join(shown) == c.text  # what was shown is exactly the final text, never retracted
    return c


def every_split(text):
    """The text split into single characters: the hardest streaming case."""
    return list(text)


@pytest.mark.parametrize("raw,expected", [
    ("TIM: TIM: Hello there!", "Hello there!"),
    ("**TIM:** Hello", "Hello"),
    ("Tim : Hello", "Hello"),
    ("Hello!\nUser: thanks\nTIM: you're welcome", "Hello!"),
    ("Hello!\n**User:** more", "Hello!"),
    ("Timing matters: plants need light.", "Timing matters: plants need light."),
    ("Users: many people.", "Users: many people."),
    ("  \n  ", ""),
    ("Line one\nLine two", "Line one\nLine two"),
])
def test_labels_cleaned_whole_and_streamed(raw, expected):
    assert clean([raw]).text == expected
    assert clean(every_split(raw)).text == expected


def test_stop_sequence_cut_even_when_split_across_chunks():
    c = clean(["Sure, 2+2=4.<|im", "_end|> garbage after"])
    assert c.text == "Sure, 2+2=4."
    assert c.stopped_by == "<|im_end|>"


def test_custom_stop_sequence_and_reason():
    c = clean(list("Answer: 42 ### next question"), stops=["###"])
    assert c.text == "Answer: 42"
    assert c.stopped_by == "###"


def test_user_turn_leak_reports_the_label():
    c = clean(["Good question.\nUser:", " what about"])
    assert c.text == "Good question."
    assert c.stopped_by is not None and "User" in c.stopped_by


def test_nothing_shown_is_ever_taken_back():
    c = StreamCleaner(own_labels=["TIM"], other_labels=["User"])
    shown = ""
    for chunk in ["T", "I", "M", ":", " ", "Hi", " there", "\n", "U", "s", "e", "r", ":", " bye"]:
        shown += c.feed(chunk)
        assert c.text == shown
        assert "TIM" not in shown and "User" not in shown
    shown += c.finish()
    assert shown == "Hi there"


def test_tutorchatbot_transcripts_leak_free(shared_dir):
    """Feed real TIM turns followed by the next 'User:' line: only TIM's words come out."""
    folder = shared_dir / "data" / "tutorchatbot" / "convos"
    files = sorted(folder.glob("*.txt"))[:40]
    assert files
    checked = 0
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        # Everything after the first "TIM:" is what a leaky model would generate.
        i = text.find("TIM:")
        if i < 0:
            continue
        leaky = text[i:]
        c = clean([leaky[j:j + 7] for j in range(0, len(leaky), 7)])
        assert not c.text.lower().startswith("tim")
        assert "\nUser:" not in c.text and "\nTIM:" not in c.text
        checked += 1
    assert checked >= 20
