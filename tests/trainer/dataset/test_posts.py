"""Posts become training data: tweets, a Discord data package and Facebook/Instagram posts (the
owner's words with nobody else's) build into prompted examples; real fixtures from ../shared and a
team-written posts-only Twitter archive; skips counted by reason; --no-prompted-posts."""
from __future__ import annotations

import json
import zipfile

import pytest

from tests.trainer.dataset.test_build import read_jsonl
from trainer.dataset.build import BuildError, BuildOptions, build_dataset
from trainer.dataset.ingest import import_export
from trainer.dataset.posts import CONTINUE_PROMPTS, NO_KEYWORDS, POST_PROMPTS, REPLY_PROMPTS, prompt_for, PromptLog
from trainer.importers import ImportOptions

OWN_TWEETS = [
    ("101", "Sun Jan 05 10:00:00 +0000 2020", "Finally repainted the garden shed, bright yellow this time 🌼", None),
    ("102", "Mon Feb 10 18:30:00 +0000 2020", "Trains late again. Reading my novel on the platform, at least the chapter is gripping", None),
    ("103", "Tue Mar 03 07:45:00 +0000 2020", "1/ Some notes on baking sourdough at home", None),
    ("104", "Tue Mar 03 07:46:00 +0000 2020", "2/ the starter needs feeding twice daily, honestly", "103"),
    ("105", "Tue Mar 03 07:47:00 +0000 2020", "3/ and patience. Lots of patience!!", "104"),
    ("106", "Sat Apr 11 21:00:00 +0000 2020", "whoever invented karaoke owes my neighbours an apology 😂", None),
    ("107", "Sun May 17 12:00:00 +0000 2020", "Cycling along the river this morning, herons everywhere", None),
    ("108", "Fri Jun 19 16:20:00 +0000 2020", "Tomatoes on the balcony are finally turning red", None),
    ("109", "Wed Jul 22 09:10:00 +0000 2020", "Exam results tomorrow and I cannot sleep", None),
    ("110", "Thu Aug 27 20:05:00 +0000 2020", "@marathonmia congrats on the finish!! incredible pace", "999"),
]


def _tweet(tid, created, text, parent=None, **extra):
    t = {"id_str": tid, "created_at": created, "full_text": text, "entities": {"urls": []}}
    if parent:
        t["in_reply_to_status_id_str"] = parent
        t["in_reply_to_screen_name"] = "me" if parent != "999" else "marathonmia"
        t["in_reply_to_user_id_str"] = "42" if parent != "999" else "77"
    t.update(extra)
    return {"tweet": t}


def write_posts_only_archive(path):
    """A team-written Twitter archive zip: only the owner's posts, plus one of each skipped kind."""
    items = [_tweet(*t) for t in OWN_TWEETS]
    items += [
        _tweet("201", "Mon Sep 07 10:00:00 +0000 2020", "RT @newsdesk: Big storm tonight, stay safe"),
        _tweet("202", "Mon Sep 07 11:00:00 +0000 2020", "this is so true", is_quote_status="true", quoted_status_id_str="555"),
        _tweet("203", "Tue Sep 08 11:00:00 +0000 2020", "https://t.co/abc123"),
        _tweet("204", "Wed Sep 09 11:00:00 +0000 2020", "https://t.co/pic1",
               extended_entities={"media": [{"url": "https://t.co/pic1", "type": "photo"}]}),
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/account.js", 'window.YTD.account.part0 = [{"account": {"accountId": "42", "username": "me"}}]')
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = " + json.dumps(items, ensure_ascii=False))
    return path


def _assistant_turns(examples):
    return [m["content"] for ex in examples for m in ex["messages"] if m["role"] == "assistant"]


async def _build(db, settings, persona, **options):
    return await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(**options))


async def test_posts_only_archive_yields_prompted_examples(db, settings, tmp_path, persona):
    report = await import_export(db, persona="twin", kind="twitter", path=write_posts_only_archive(tmp_path / "twitter.zip"),
                                 options=ImportOptions())
    assert report.counts["skipped"] == {"quote": 1, "retweet": 1}
    result = await _build(db, settings, persona, val_fraction=0.2)
    m = result.manifest
    train, val = read_jsonl(result.folder / "train.jsonl"), read_jsonl(result.folder / "val.jsonl")
    assert m["counts"]["examples_from_posts"] == len(train) + len(val) >= 8
    assert m["counts"]["examples_from_conversations"] == 0
    assert m["dropped"]["post_link_only"] == 1 and m["dropped"]["post_media_only"] == 1
    assert "session_no_user_turn" not in m["dropped"]
    assert m["posts"]["skipped_at_import"] == {"quote": 1, "retweet": 1}
    assert sum(m["posts"]["used"].values()) >= len(train) + len(val) and set(m["posts"]["templates"]) == {"post", "reply", "continue", "no_keywords"}
    # Assistant turns are the posts exactly as written (the @handle pseudonymised), never a placeholder.
    said = _assistant_turns(train + val)
    for _tid, _ts, text, _p in OWN_TWEETS[:-1]:
        assert text in said, text
    assert any(t.endswith("congrats on the finish!! incredible pace") and "marathonmia" not in t for t in said)
    assert not any("[image]" in t or "<media:" in t or "t.co" in t or "[link]" in t for t in said)
    # The self-reply thread is one multi-turn example; user turns are neutral prompts.
    (thread,) = [ex for ex in train + val if any("1/ Some notes" in msg["content"] for msg in ex["messages"])]
    roles = [msg["role"] for msg in thread["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert thread["messages"][3]["content"] in CONTINUE_PROMPTS
    first_prompt = thread["messages"][1]["content"]
    assert any(first_prompt.startswith(t.split("{")[0]) for t in POST_PROMPTS) and "sourdough" in first_prompt
    (reply,) = [ex for ex in train + val if "congrats" in ex["messages"][-1]["content"]]
    assert any(reply["messages"][1]["content"].startswith(t.split("{")[0]) for t in REPLY_PROMPTS)
    assert "from posts" in (result.folder / "report.md").read_text()


async def test_no_prompted_posts_leaves_posts_out(db, settings, tmp_path, persona):
    await import_export(db, persona="twin", kind="twitter", path=write_posts_only_archive(tmp_path / "t.zip"), options=ImportOptions())
    with pytest.raises(BuildError, match="no-prompted-posts"):
        await _build(db, settings, persona, prompted_posts=False)


def test_prompt_uses_the_posts_keywords_and_is_stable():
    log = PromptLog()
    a = prompt_for("Cycling along the river this morning, herons everywhere", reply=False, log=log)
    assert a == prompt_for("Cycling along the river this morning, herons everywhere", reply=False, log=log)
    assert "herons" in a and "cycling" in a and "this" not in a.split()
    assert prompt_for("ok and the", reply=False, log=log) == NO_KEYWORDS
    assert sum(log.used.values()) == 3


async def test_real_fixtures_twitter_discord_and_messenger_mix(db, settings, shared_dir, persona):
    fx = shared_dir / "fixtures"
    for kind, path, owner in [("twitter", fx / "twitter" / "joeamroo__knowledgemaxxing__tweets.js", ()),
                              ("twitter", fx / "twitter" / "glennjones__twitter-archive-extractor__2013_11.js", ()),
                              ("discord-package", fx / "discord" / "langchain-ai__langchain__messages.csv", ()),
                              ("facebook", fx / "facebook_instagram" / "langchain-ai__langchain-community__facebook_chat.json", ("User 2",))]:
        assert path.is_file(), path
        await import_export(db, persona="twin", kind=kind, path=path, options=ImportOptions(owner=owner))
    result = await _build(db, settings, persona)
    c = result.manifest["counts"]
    assert c["examples_from_posts"] >= 3 and c["examples_from_conversations"] >= 1
    examples = read_jsonl(result.folder / "train.jsonl") + read_jsonl(result.folder / "val.jsonl")
    said = _assistant_turns(examples)
    assert "This is a test tweet in a test archieve file" in said
    thread = [ex for ex in examples if any(m["content"] == "1/ A thread on things I learned this year" for m in ex["messages"])]
    assert len(thread) == 1 and thread[0]["messages"][-1]["content"] == "2/ Second part of the thread"
    assert result.manifest["posts"]["skipped_at_import"] == {"retweet": 1}
    assert not any("<media:" in t or t.startswith("[image]") for t in said)


async def test_facebook_and_instagram_posts_and_comments(db, settings, tmp_path, persona):
    fb = tmp_path / "fb"
    (fb / "posts").mkdir(parents=True)
    (fb / "comments").mkdir()
    posts = [{"timestamp": 1600000000 + i * 86400, "data": [{"post": f"Day {i} of the allotment diary: the courgettes keep multiplying {i}"}],
              "title": "Sam updated his status."} for i in range(5)]
    posts.append({"timestamp": 1600900000, "attachments": [{"data": [{"media": {"uri": "photos/1.jpg"}}]}], "title": "Sam added a photo."})
    (fb / "posts" / "your_posts_1.json").write_text(json.dumps(posts), encoding="utf-8")
    comments = {"comments_v2": [{"timestamp": 1601000000, "data": [{"comment": {"comment": "Gorgeous sunset, where was this taken?",
                                                                                 "author": "Sam Jones"}}],
                                 "title": "Sam Jones commented on Alex Smith's post."}]}
    (fb / "comments" / "comments.json").write_text(json.dumps(comments), encoding="utf-8")
    report = await import_export(db, persona="twin", kind="facebook-posts", path=fb, options=ImportOptions())
    assert report.owner_ids == ["Sam Jones"] and report.counts["imported"] == 8
    ig = tmp_path / "posts_1.json"
    ig.write_text(json.dumps([{"media": [{"uri": "a.jpg", "title": "Mountain hut breakfast with a view", "creation_timestamp": 1602000000}]},
                              {"media": [{"uri": "b.jpg", "title": "", "creation_timestamp": 1602100000}]}]), encoding="utf-8")
    await import_export(db, persona="twin", kind="instagram-posts", path=ig, options=ImportOptions(owner=("sam",)))
    result = await _build(db, settings, persona)
    examples = read_jsonl(result.folder / "train.jsonl") + read_jsonl(result.folder / "val.jsonl")
    said = _assistant_turns(examples)
    assert "Gorgeous sunset, where was this taken?" in said and "Mountain hut breakfast with a view" in said
    assert result.manifest["dropped"]["post_media_only"] == 2
    assert result.manifest["counts"]["examples_from_posts"] == len(examples) >= 6
    text = (result.folder / "train.jsonl").read_text() + (result.folder / "val.jsonl").read_text()
    assert "Alex Smith" not in text and "Sam Jones" not in text
