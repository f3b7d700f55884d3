"""Golden tests for the non-WhatsApp importers, on small invented exports written inline."""
from __future__ import annotations

import json
import zipfile

import pytest

from trainer.importers import ImportFormatError, ImportOptions, get_importer, importers


def parse(kind, path, **opts):
    return get_importer(kind).parse(path, ImportOptions(**opts))


def test_discovery_lists_every_kind():
    assert {"whatsapp", "telegram", "discord-package", "discord-exporter", "twitter", "facebook", "instagram", "jsonl", "csv"} <= set(importers())


# -- Telegram ----------------------------------------------------------------------------------
TG_CHAT = {"name": "Mila", "type": "personal_chat", "id": 42, "messages": [
    {"id": 1, "type": "service", "date": "2023-01-01T10:00:00", "actor": "Mila", "actor_id": "user7", "action": "phone_call"},
    {"id": 2, "type": "message", "date": "2023-01-01T10:01:00", "date_unixtime": "1672567260", "from": "Mila", "from_id": "user7", "text": "hi"},
    {"id": 3, "type": "message", "date": "2023-01-01T10:02:00", "from": "Me", "from_id": "user9",
     "text": [{"type": "bold", "text": "Look"}, ": ", {"type": "link", "text": "https://example.com"}], "reply_to_message_id": 2},
    {"id": 4, "type": "message", "date": "2023-01-01T10:03:00", "from": "Me", "from_id": "user9", "photo": "photos/a.jpg", "text": "caption"},
    {"id": 5, "type": "message", "date": "2023-01-01T10:04:00", "from": "Mila", "from_id": "user7", "text": ""},
]}


def test_telegram_single_chat(tmp_path):
    p = tmp_path / "result.json"
    p.write_text(json.dumps(TG_CHAT), encoding="utf-8")
    r = parse("telegram", p, owner=("9",))
    assert r.owner_ids == {"user9"}
    assert [m.kind for m in r.messages] == ["system", "text", "text", "media"]
    assert r.messages[2].text == "Look: https://example.com" and r.messages[2].reply_to == "2"
    assert r.messages[3].text == "<media:image>\ncaption"
    assert r.messages[1].timestamp.tzinfo is not None
    assert r.skipped == {"empty": 1} and "message 5" in str(r.problems[0])


def test_telegram_full_export_owner_from_personal_information(tmp_path):
    p = tmp_path / "result.json"
    p.write_text(json.dumps({"personal_information": {"user_id": 9}, "chats": {"list": [TG_CHAT, "junk"]}}), encoding="utf-8")
    r = parse("telegram", p)
    assert r.owner_ids == {"user9"}
    assert r.skipped.get("bad_chat") == 1
    assert r.region is None
    p.write_text(json.dumps({"personal_information": {"user_id": 9, "phone_number": "+49 151 23456789"},
                             "chats": {"list": [TG_CHAT]}}), encoding="utf-8")
    r = parse("telegram", p)
    assert (r.region, r.region_from) == ("DE", "the account's phone number")


# -- Discord -----------------------------------------------------------------------------------
def _package(root):
    (root / "Account").mkdir(parents=True)
    (root / "Account" / "user.json").write_text(json.dumps({"id": "555", "username": "kit"}))
    (root / "Messages" / "c100").mkdir(parents=True)
    (root / "Messages" / "c200").mkdir(parents=True)
    (root / "Messages" / "index.json").write_text(json.dumps({"100": "Direct Message with zed#0001", "200": "general in Guild"}))
    (root / "Messages" / "c100" / "messages.json").write_text(json.dumps([
        {"ID": "3", "Timestamp": "2023-05-01 10:02:00.000000+00:00", "Contents": "second", "Attachments": ""},
        {"ID": "2", "Timestamp": "2023-05-01 10:01:00.000000+00:00", "Contents": "", "Attachments": "https://cdn/x.png"},
        {"ID": "1", "Timestamp": "2023-05-01 10:00:00.000000+00:00", "Contents": "first", "Attachments": ""},
    ]))
    (root / "Messages" / "c200" / "messages.csv").write_text(
        "ID,Timestamp,Contents,Attachments\n7,2022-01-01 09:00:00+00:00,old csv line,\n8,2022-01-01 09:01:00+00:00,,\n")


def test_discord_package_region_from_account_phone_or_locale(tmp_path):
    _package(tmp_path / "pkg")
    user = tmp_path / "pkg" / "Account" / "user.json"
    assert parse("discord-package", tmp_path / "pkg").region is None
    user.write_text(json.dumps({"id": "555", "username": "kit", "settings": {"settings": {"locale": "pt-BR"}}}))
    r = parse("discord-package", tmp_path / "pkg")
    assert (r.region, r.region_from) == ("BR", "the account's locale pt-BR")
    user.write_text(json.dumps({"id": "555", "username": "kit", "phone": "+447911123456", "locale": "en-US"}))
    assert parse("discord-package", tmp_path / "pkg").region == "GB"


def test_discord_package_folder_and_zip(tmp_path):
    _package(tmp_path / "pkg")
    r = parse("discord-package", tmp_path / "pkg")
    assert r.owner_ids == {"555"}
    texts = [(m.conversation, m.text) for m in r.messages]
    assert ("Direct Message with zed#0001 (100)", "first") == texts[0]
    assert [t for c, t in texts if c.endswith("(100)")] == ["first", "<media:image>", "second"]
    assert ("general in Guild (200)", "old csv line") in texts
    assert r.skipped == {"empty": 1} and "line 3" in str(r.problems[0])
    z = tmp_path / "package.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in (tmp_path / "pkg").rglob("*"):
            if f.is_file():
                zf.write(f, f.relative_to(tmp_path / "pkg"))
    assert len(parse("discord-package", z).messages) == len(r.messages)


def test_discord_exporter_json_and_csv(tmp_path):
    data = {"guild": {"id": "1", "name": "G"}, "channel": {"id": "9", "name": "chat"}, "messages": [
        {"id": "1", "type": "Default", "timestamp": "2024-01-15T10:00:00+00:00", "content": "hello", "author": {"id": "11", "name": "amy", "nickname": "Amy B"}},
        {"id": "2", "type": "Reply", "timestamp": "2024-01-15T10:01:00+00:00", "content": "yo", "author": {"id": "22", "name": "bo"}, "reference": {"messageId": "1"}},
        {"id": "3", "type": "GuildMemberJoin", "timestamp": "2024-01-15T10:02:00+00:00", "content": "", "author": {"id": "33", "name": "cy"}},
        {"id": "4", "type": "Default", "timestamp": "2024-01-15T10:03:00+00:00", "content": "", "author": {"id": "22", "name": "bo"}, "attachments": [{"fileName": "clip.mp4"}]},
        {"id": "5", "type": "Default", "content": "no author"},
    ]}
    p = tmp_path / "chat.json"
    p.write_text(json.dumps(data))
    r = parse("discord-exporter", p, owner=("bo",))
    assert r.owner_ids == {"22"}
    assert [m.kind for m in r.messages] == ["text", "text", "system", "media"]
    assert r.messages[1].reply_to == "1" and r.messages[3].text == "<media:video>"
    assert r.skipped == {"bad_record": 1}
    c = tmp_path / "chat.csv"
    c.write_text('AuthorID,Author,Date,Content,Attachments,Reactions\n11,amy,2024-01-15T10:00:00+00:00,"hi, there",,\n22,bo,2024-01-15T10:01:00+00:00,yo,,\n')
    r2 = parse("discord-exporter", c, owner=("22",))
    assert [m.text for m in r2.messages] == ["hi, there", "yo"] and r2.owner_ids == {"22"}


# -- Twitter -----------------------------------------------------------------------------------
def _tweet(tid, text, reply_to=None, reply_user=None, screen=None, created="Wed Oct 10 20:19:24 +0000 2018"):
    t = {"id_str": tid, "full_text": text, "created_at": created}
    if reply_to:
        t.update(in_reply_to_status_id_str=reply_to, in_reply_to_user_id_str=reply_user, in_reply_to_screen_name=screen)
    return {"tweet": t}


def test_twitter_parts_unescape_and_reply_chains(tmp_path):
    data = tmp_path / "archive" / "data"
    data.mkdir(parents=True)
    part0 = [_tweet("10", "Fish &amp; chips &lt;3", created="Wed Oct 10 20:00:00 +0000 2018"),
             _tweet("11", "and a follow-up", "10", "900", "me", created="Wed Oct 10 20:05:00 +0000 2018"),
             _tweet("12", "RT @other: not mine")]
    part1 = [_tweet("20", "@pal agreed!", "99", "123", "pal", created="Thu Oct 11 08:00:00 +0000 2018")]
    (data / "tweets.js").write_text("window.YTD.tweets.part0 = " + json.dumps(part0))
    (data / "tweets-part1.js").write_text("window.YTD.tweets.part1 = " + json.dumps(part1))
    r = parse("twitter", tmp_path / "archive")
    assert r.owner_ids == {"900"}
    by_conv = {}
    for m in r.messages:
        by_conv.setdefault(m.conversation, []).append(m)
    assert [m.text for m in by_conv["10"]] == ["Fish & chips <3", "and a follow-up"]
    assert [(m.sender_id, m.kind) for m in by_conv["20"]] == [("123", "media"), ("900", "text")]
    assert r.skipped == {"retweet": 1}


def test_twitter_like_file_is_refused(tmp_path):
    p = tmp_path / "like.js"
    p.write_text('window.YTD.like.part0 = [{"like": {"tweetId": "1"}}]')
    with pytest.raises(ImportFormatError, match="like"):
        parse("twitter", p)


# -- Facebook / Instagram ----------------------------------------------------------------------
def _mojibake(s: str) -> str:
    return s.encode("utf-8").decode("latin-1")


def test_facebook_mojibake_and_order_across_files(tmp_path):
    thread = tmp_path / "inbox" / "zoe_abc"
    thread.mkdir(parents=True)
    newest = {"participants": [{"name": _mojibake("Zoë Brandt")}, {"name": "Me Myself"}], "title": _mojibake("Zoë Brandt"),
              "messages": [{"sender_name": "Me Myself", "timestamp_ms": 3000, "content": _mojibake("Ça va 😀")},
                           {"sender_name": _mojibake("Zoë Brandt"), "timestamp_ms": 2000, "content": "second"}]}
    older = {"participants": newest["participants"], "title": newest["title"],
             "messages": [{"sender_name": _mojibake("Zoë Brandt"), "timestamp_ms": 1000, "photos": [{"uri": "x.jpg"}]},
                          {"sender_name": "Me Myself", "timestamp_ms": 500, "content": "Zoë Brandt unsent a message", "is_unsent": True}]}
    (thread / "message_1.json").write_text(json.dumps(newest))
    (thread / "message_2.json").write_text(json.dumps(older))
    for kind in ("facebook", "instagram"):
        r = parse(kind, tmp_path / "inbox", owner=("Me Myself",))
        assert [m.text for m in r.messages] == ["Zoë Brandt unsent a message", "<media:image>", "second", "Ça va 😀"]
        assert [m.kind for m in r.messages] == ["system", "media", "text", "text"]
        assert "Zoë Brandt" in r.participants and r.owner_ids == {"Me Myself"}


# -- JSONL / CSV -------------------------------------------------------------------------------
def test_jsonl_openai_legacy_and_bad_lines(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text("\n".join([
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
        "{not json",
        json.dumps({"prompt": "User: hi tim\nTIM: hello!\nUser: what is 2+2?\nTIM:", "completion": " 4"}),
        json.dumps({"messages": [{"role": "wizard", "content": "x"}]}),
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}),
    ]), encoding="utf-8")
    r = parse("jsonl", p)
    assert r.owner_ids == {"assistant"}
    legacy = [m for m in r.messages if m.conversation.endswith(":3")]
    assert [(m.sender_id, m.text) for m in legacy] == [("user", "hi tim"), ("assistant", "hello!"), ("user", "what is 2+2?"), ("assistant", "4")]
    assert r.skipped == {"bad_json": 1, "bad_message": 1}
    assert any(str(p_).endswith("line 2: not JSON (Expecting property name enclosed in double quotes)") for p_ in r.problems)
    assert [m.kind for m in r.messages if m.conversation.endswith(":5")] == ["text", "silence"]


def test_csv_columns_by_option_and_semicolons(tmp_path):
    p = tmp_path / "pairs.csv"
    p.write_text("Frage;Antwort\nWie geht's?;Gut, danke!\n;leer\n", encoding="utf-8-sig")
    r = parse("csv", p, prompt_column="frage", response_column="antwort")
    assert [(m.sender_id, m.text) for m in r.messages] == [("user", "Wie geht's?"), ("assistant", "Gut, danke!")]
    assert r.skipped == {"empty": 1} and "line 3" in str(r.problems[0])
    with pytest.raises(ImportFormatError, match="set --prompt-column"):
        parse("csv", p)
