"""Property tests: random bytes and truncated files never crash an importer, and never reach a dataset."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.importers import ImportFormatError, ImportOptions, ParseResult, get_importer, importers

KINDS = [k for k in importers() if k != "transcripts"]
SUFFIX = {"whatsapp": ".txt", "telegram": ".json", "discord-package": ".json", "discord-exporter": ".json", "twitter": ".js",
          "facebook": ".json", "instagram": ".json", "jsonl": ".jsonl", "csv": ".csv",
          "facebook-posts": ".json", "instagram-posts": ".json"}
GOOD = {
    "whatsapp": "[03.02.24, 18:05:09] Lena Kraus: Hallo!\n[03.02.24, 18:06:01] Ben Ott: Na?\nzweite Zeile\n",
    "telegram": json.dumps({"name": "x", "messages": [{"id": 1, "type": "message", "date": "2023-01-01T10:00:00", "from": "A", "from_id": "user1", "text": "hi"}]}),
    "discord-package": json.dumps([{"ID": "1", "Timestamp": "2023-05-01 10:00:00+00:00", "Contents": "hey", "Attachments": ""}]),
    "discord-exporter": json.dumps({"messages": [{"id": "1", "type": "Default", "timestamp": "2024-01-15T10:00:00+00:00", "content": "hello", "author": {"id": "1", "name": "a"}}]}),
    "twitter": "window.YTD.tweets.part0 = " + json.dumps([{"tweet": {"id_str": "1", "full_text": "hello", "created_at": "Wed Oct 10 20:19:24 +0000 2018"}}]),
    "facebook": json.dumps({"participants": [{"name": "A"}], "messages": [{"sender_name": "A", "timestamp_ms": 1, "content": "hi"}]}),
    "instagram": json.dumps({"participants": [{"name": "A"}], "messages": [{"sender_name": "A", "timestamp_ms": 1, "content": "hi"}]}),
    "jsonl": json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n",
    "csv": "prompt,response\nq,a\n",
    "facebook-posts": json.dumps([{"timestamp": 1, "data": [{"post": "hi"}]}]),
    "instagram-posts": json.dumps([{"media": [{"uri": "a.jpg", "title": "hi", "creation_timestamp": 1}]}]),
}


def _check(kind: str, path) -> None:
    try:
        result = get_importer(kind).parse(path, ImportOptions())
    except ImportFormatError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        return
    assert isinstance(result, ParseResult)
    for m in result.messages:
        assert isinstance(m.text, str) and m.sender_id is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_random_bytes(tmp_path, data):
    for kind in KINDS:
        path = tmp_path / f"input{SUFFIX[kind]}"
        path.write_bytes(data)
        _check(kind, path)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(min_value=0.0, max_value=1.0), noise=st.binary(max_size=20))
def test_truncated_and_corrupted_files(tmp_path, cut, noise):
    for kind in KINDS:
        good = GOOD[kind].encode("utf-8")
        path = tmp_path / f"input{SUFFIX[kind]}"
        path.write_bytes(good[: int(len(good) * cut)] + noise)
        _check(kind, path)


def test_good_samples_parse():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            path = Path(tmp) / f"input{SUFFIX[kind]}"
            path.write_text(GOOD[kind], encoding="utf-8")
            assert get_importer(kind).parse(path, ImportOptions()).messages, kind
