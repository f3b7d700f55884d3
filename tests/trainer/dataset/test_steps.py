"""Unit tests of the build steps: sessions, clean-up, PII detectors, windows, split, tokens, validation."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from trainer.dataset.cleanup import Cleaner, is_filler
from trainer.dataset.pii import Scrubber, iban_ok, luhn_ok
from trainer.dataset.sessions import Msg, Session, assemble_turns, split_sessions
from trainer.dataset.split import assign_splits
from trainer.dataset.tokens import TokenCounter
from trainer.dataset.validate import Validator, example_errors, validate_file
from trainer.dataset.windows import make_windows


def msg(ts, who, text, owner=False, kind="text"):
    return Msg(ts, who, who, owner, kind, text)


def test_sessions_split_on_gap_and_undated_never_split():
    msgs = [msg(0, "a", "x"), msg(60, "b", "y", True), msg(60 + 7201, "a", "z"), msg(None, "a", "w"), msg(60 + 7300, "b", "v", True)]
    assert [len(s) for s in split_sessions(msgs, 7200)] == [2, 3]


def test_turns_merge_bursts_trim_and_weight_filler():
    stats = Counter()
    msgs = [msg(0, "me", "early", True), msg(1, "ann", "hi"), msg(2, "ann", "you there?"), msg(3, "me", "lol", True),
            msg(4, "ann", "<media:image>\nlook", kind="media"), msg(5, "me", "nice pic", True), msg(6, "me", "really", True),
            msg(7, "sys", "x joined", kind="system"), msg(8, "ann", "<media:sticker>", kind="media"), msg(9, "ann", "trailing")]
    cleaner = Cleaner()
    turns = assemble_turns(msgs, group=False, cleaner=cleaner, scrubber=Scrubber("Twin"), stats=stats)
    assert turns == [{"role": "user", "content": "hi\nyou there?"}, {"role": "assistant", "content": "lol", "weight": 0},
                     {"role": "user", "content": "[image] look"}, {"role": "assistant", "content": "nice pic\nreally"}]
    assert cleaner.stats["dropped_media_only"] == 1 and cleaner.stats["dropped_system"] == 1
    assert stats["trimmed_leading_assistant"] == 1 and stats["trimmed_trailing_user"] == 1
    assert assemble_turns([msg(0, "ann", "hi")], group=False, cleaner=Cleaner(), scrubber=Scrubber(), stats=stats) is None


def test_group_turns_name_speakers_with_pseudonyms():
    s = Scrubber("Twin")
    s.add_participant("Ann Lee")
    s.add_participant("Bo Chan")
    s.add_participant("Me", owner=True)
    turns = assemble_turns([msg(0, "Ann Lee", "hi Bo Chan"), msg(1, "Bo Chan", "hey"), msg(2, "Me", "hi both", True)],
                           group=True, cleaner=Cleaner(), scrubber=s, stats=Counter())
    assert turns[0]["content"] == "Person 1: hi Person 2\nPerson 2: hey"


def test_cleanup_rules():
    c = Cleaner(max_chars=20)
    assert c.clean("system", "x") is None
    assert c.clean("text", "https://example.com/a") == "[link]"
    assert c.clean("silence", "") == ""
    capped = c.clean("text", "word " * 20)
    assert capped.endswith("…") and len(capped) <= 21
    assert Cleaner(media="drop").clean("media", "<media:image>") is None and Cleaner().clean("media", "<media:image>") is None
    assert Cleaner(media="drop").clean("media", "<media:image>\ncaption") == "caption"
    assert Cleaner().clean("media", "<media:video>\ncaption") == "[video] caption"
    assert is_filler("lol") and is_filler("Ok!") and is_filler("👍") and is_filler("hahaha") and not is_filler("ok, see you at 8")


@pytest.mark.parametrize("text,expected", [
    ("write to a.b+c@mail.example.co.uk now", "write to [EMAIL] now"),
    ("call +1 (415) 555-0132 or 0044 20 7946 0958", "call [PHONE] or [PHONE]"),
    ("card 4111-1111-1111-1111.", "card [CARD]."),
    ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),
    ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN [IBAN] thanks"),
    ("bad iban GB00 WEST 1234 5698 7654 32", "bad iban GB00 WEST 1234 5698 7654 32"),
    ("server 10.0.0.254 and fe80:0:0:0:0:0:0:1", "server [IP] and [IP]"),
    ("see https://example.com/x?y=1).", "see [URL])."),
    ("ping @sam_99 and @sam_99", "ping @user1 and @user1"),
    ("at 10:30 on 12.03.2024 v1.2.3", "at 10:30 on 12.03.2024 v1.2.3"),
])
def test_pii_detectors(text, expected):
    assert Scrubber().scrub(text) == expected


def test_pii_names_consistent_and_never_substrings():
    s = Scrubber("Twin")
    s.add_participant("Anna Berg")
    s.add_participant("Tom Ek", owner=True)
    assert s.scrub("anna berg, Anna and Berg met Tom Ek; Annabel stayed") == "Person 1, Person 1 and Person 1 met Twin; Annabel stayed"
    assert s.report()["name"] == 4
    assert luhn_ok("4539148803436467") and not luhn_ok("4539148803436468") and iban_ok("DE89 3704 0044 0532 0130 00")


def test_windows_fit_and_overlap_with_context():
    tokens = [10] * 20                      # 10 exchanges of 20 tokens
    spans, too_long = make_windows(20, 10, tokens, 75)
    assert too_long == 0 and spans[0] == (0, 6, False)
    for a, b, ctx in spans:
        assert (b - a) % 2 == 0 and 10 + sum(tokens[a:b]) <= 75
    covered = {i for a, b, ctx in spans for i in range(a + (2 if ctx else 0), b)}
    assert covered == set(range(20))
    assert make_windows(4, 10, [10, 100, 10, 10], 60) == ([(2, 4, False)], 1)


def test_split_newest_sessions_to_validation_deterministically():
    sessions = [Session(f"s{i}", 1, float(i), float(i), []) for i in range(10)] + [Session(f"u{i}", 2, None, None, []) for i in range(50)]
    assign_splits(sessions, 0.2)
    assert [s.key for s in sessions[:10] if s.split == "val"] == ["s8", "s9"]
    undated_val = [s.key for s in sessions[10:] if s.split == "val"]
    assign_splits(sessions, 0.2)
    assert undated_val == [s.key for s in sessions[10:] if s.split == "val"] and 0 < len(undated_val) < 25


def test_token_counter_with_tokenizer_callable_and_estimate():
    class FakeTokenizer:
        def encode(self, text, add_special_tokens=False):
            return text.split()

    assert TokenCounter(FakeTokenizer()).count("a b c") == 3
    assert TokenCounter(lambda t: 7).count("anything") == 7
    assert TokenCounter().count("12345678") == 2 and TokenCounter().is_estimate


def test_validation_error_keys():
    ok = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}
    assert example_errors(ok) == []
    assert example_errors([]) == ["data_type"]
    assert example_errors({"messages": []}) == ["missing_messages_list"]
    assert "message_unrecognized_key" in example_errors({"messages": [{"role": "user", "content": "q", "x": 1}, {"role": "assistant", "content": "a"}]})
    assert "unrecognized_role" in example_errors({"messages": [{"role": "bot", "content": "q"}, {"role": "assistant", "content": "a"}]})
    assert "message_missing_key" in example_errors({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]})
    silent = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}
    assert example_errors(silent) == ["missing_content"] and example_errors(silent, allow_silence=True) == []
    assert set(example_errors({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]})) == {"not_alternating", "last_not_assistant"}
    assert "example_missing_assistant_message" in example_errors({"messages": [{"role": "user", "content": "q"}]})


def test_validate_file_reports_lines_and_distributions(tmp_path):
    p = tmp_path / "d.jsonl"
    good = {"messages": [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi " * 40}]}
    p.write_text(json.dumps(good) + "\n{oops\n" + json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n")
    report = validate_file(p, Validator(max_tokens=20))
    assert report["errors"] == {"example_missing_assistant_message": 1, "last_not_assistant": 1, "too_long": 1, "invalid_json": 1}
    assert report["error_lines"][1].startswith(f"{p}:2: invalid_json")
    assert report["distributions"]["messages"]["max"] == 2 and report["estimate"]["epochs"] >= 1 and not report["ok"]


def test_pii_names_match_across_case_and_unicode_folding():
    s = Scrubber("Twin")
    s.add_participant("İlker Yılmaz")
    s.add_participant("Jürgen Straße")
    s.add_participant("Will Hart")
    s.add_participant("Zoë", owner=True)
    out = s.scrub("İlker, ilker, ILKER, Ilker, ılker; YILMAZ; Straße, STRASSE, strasse, JÜRGEN; zoë ZOË; "
                  "I will ask Will and WILL; İlkerin and Strasser stay")
    assert out == ("Person 1, Person 1, Person 1, Person 1, Person 1; Person 1; Person 2, Person 2, Person 2, Person 2; Twin Twin; "
                   "I will ask Person 3 and Person 3; İlkerin and Strasser stay")
    assert s.pseudonym("ilker yilmaz") == "Person 1" and s.pseudonym("JÜRGEN STRASSE") == "Person 2"


def test_folded_text_maps_matches_back_to_the_original():
    from trainer.textmatch import FoldedText, fold

    assert fold("İlker") == fold("ILKER") == fold("ılker") == "ilker" and fold("Straße") == fold("STRASSE") == "strasse"
    assert fold("Ａｎｎａ") == "anna"
    ft = FoldedText("Grüße an STRAẞE!")
    start = ft.folded.index("strasse")
    assert ft.text[slice(*ft.span(start, start + len("strasse")))] == "STRAẞE"


@pytest.mark.parametrize("many_names", [False, True])
def test_scrub_many_is_scrub_of_each_text(many_names):
    """`scrub_many` (one quick test over the batch: str.find per word, or the regex with many names)
    gives exactly `scrub` of every text, counts included."""
    import random

    rng = random.Random(5)
    names = ["Ana Paula Reis", "İlker Yılmaz", "Will Hart", "Zoë Berg"] + ([f"Member{i} Surname{i}" for i in range(60)] if many_names else [])
    pieces = ["hey ana", "ANA!", "banana", "ILKER", "ılker", "i will", "Will", "zoë", "Zoe\u0308", "call +44 7911 123456",
              "mail x.y@example.org", "٣١٢", "https://example.com/x", "www.example.org", "no digits here", "😂", "\n", "member7",
              "Surname12 said", "reis", "4539 1488 0343 6467", "@handle_1", ""]
    batches = [[" ".join(rng.choices(pieces, k=rng.randint(0, 4))) for _ in range(rng.randint(2, 12))] for _ in range(60)]
    one, many = Scrubber("Twin", region="GB"), Scrubber("Twin", region="GB")
    for s in (one, many):
        for i, n in enumerate(names):
            s.add_participant(n, owner=i == 0)
    for batch in batches:
        assert many.scrub_many(batch) == [one.scrub(t) for t in batch]
    assert many.counts == one.counts and many.counts["name"] and many.counts["phone"]


def test_fold_handles_turkish_i_sharp_s_marks_and_compatibility_forms():
    from trainer.textmatch import fold

    texts = ["İlker", "STRAẞE", "Zoe\u0308", "ılık", "😂 ok", "ΣΑΣ", "ﬁne", "①②"]
    assert [fold(t) for t in texts] == ["ilker", "strasse", "zoe\u0308", "ilik", "😂 ok", "σασ", "fine", "12"]
