"""`text_stats` on its own: stop words by language, whole emoji sequences, years and length buckets;
`write_png` writes a real PNG."""
from trainer.twin.insights import text_stats, write_png


def test_stop_words_follow_the_language_and_emoji_stay_whole():
    messages = [("2020-05-01T10:00:00+00:00", "Das ist ein schöner Tag und die Sonne scheint 👍🏽👍🏽"),
                ("2021-06-01T10:00:00+00:00", "the sun is out and it is lovely 👨‍👩‍👧"),
                (None, "x" * 250)]
    german = text_stats(messages, language="de")
    words = dict(german["top_words"])
    assert "und" not in words and "die" not in words and "and" in words and "schöner" in words
    assert "and" not in dict(text_stats(messages)["top_words"])      # no language: every common list applies
    assert dict(german["top_emoji"]) == {"👍🏽": 2, "👨‍👩‍👧": 1}
    assert german["by_year"] == {"2020": 1, "2021": 1, "unknown": 1}
    assert german["lengths"]["buckets"]["201-500"] == 1 and german["lengths"]["max"] == 250


def test_png_is_written(tmp_path):
    data = {**text_stats([("2020-01-01", "hello wonderful world")]), "twin": "sam", "side_by_side": []}
    path = write_png(data, tmp_path / "out" / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
