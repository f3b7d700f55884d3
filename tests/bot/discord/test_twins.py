"""/twin through the fake Discord, in DMs: create → import (attest, choose identity, report DM, upload
deleted) → build (DM with the gate report, tiny model) → share where admins allowed twins, where a
non-owner chats with it under the "(AI twin)" label → delete (every row and file gone, checked on
disk and in the raw database bytes). Non-owners are refused; each bad input leaves nothing behind."""
from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from tests.trainer.twin.test_cli import PLANTED, write_archive


async def done(record, timeout=10):
    await asyncio.wait_for(record.done.wait(), timeout)
    return record


async def content_of(h, record, needle, timeout=20):
    """The (edited) message of a button interaction once it contains `needle`."""
    await h.fake.wait_for(lambda: record.message and needle in (record.message.get("content") or ""), timeout, repr(needle))
    return record.message["content"]


def leftovers(h) -> list:
    uploads = h.settings.core.data_dir / "uploads"
    return [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []


async def source_count(h) -> int:
    async with h.db.execute("SELECT COUNT(*) FROM sources") as cur:
        return (await cur.fetchone())[0]


@pytest.fixture
async def twin(harness, tiny_llama_dir):
    """alice's twin 'sam' on the tiny model, created in her DM; returns the DM channel id."""
    h = harness
    h.settings.core.twin_model = str(tiny_llama_dir)
    dm = h.fake.add_dm(h.alice)
    created = await done(await h.fake.slash(dm, h.alice, "twin", "create", name="sam", owner_name="Sam"))
    assert "Created **Sam (AI twin)** (`sam`)" in created.text
    assert (h.settings.core.member_personas_dir / "sam" / "persona.toml").is_file() and "sam" in h.bot.personas
    return dm


async def import_archive(h, dm, tmp_path, filename="twitter.zip", data=None):
    data = data if data is not None else write_archive(tmp_path / "twitter.zip").read_bytes()
    record = await done(await h.fake.slash(dm, h.alice, "twin", "import", twin="sam", file=h.fake.attachment(filename, data)))
    return record


async def test_upload_report_then_build_with_gate_report(harness, twin, tmp_path):
    h, dm = harness, twin
    record = await import_archive(h, dm, tmp_path)
    assert "is this **your own** data?" in record.text and record.custom_ids() == ["twin:attest", "twin:cancel"]
    attest = await h.fake.click(record, h.alice, "twin:attest")
    text = await content_of(h, attest, "Which of these is you?")
    assert "as **twitter**" in text and "already deleted" in text and not leftovers(h)
    assert attest.message["components"][0]["components"][0]["label"].startswith("owner (42): 17 message(s) — the export's owner")
    chosen = await h.fake.click(attest, h.alice, "twin:identity:0")
    report = await content_of(h, chosen, "Imported into Sam (AI twin)")
    assert "(twitter): 19 messages (17 yours)" in report and "handle 1" in report and "quote 1, retweet 1" in report
    assert "Your upload was deleted" in report and not leftovers(h)
    async with h.db.execute("SELECT content FROM source_messages") as cur:
        stored = [r[0] for r in await cur.fetchall()]
    assert stored and not any("marathonmia" in t for t in stored)          # scrubbed before it was stored
    async with h.db.execute("SELECT owner_ids FROM twins WHERE persona = 'sam'") as cur:
        assert json.loads((await cur.fetchone())[0]) == ["42"]

    queued = await done(await h.fake.slash(dm, h.alice, "twin", "build", twin="sam", max_steps=2))
    assert "Queued" in queued.text
    await h.fake.wait_for(lambda: any(m["content"].startswith("Dataset v1") for m in h.fake.bot_messages(dm)), 180, "the gate report")
    final = "\n".join(m["content"] for m in h.fake.bot_messages(dm))
    assert "from posts" in final and "sam-v1: gate" in final and "held-out loss: candidate" in final and "answers-a-friend" in final

    insights = await done(await h.fake.slash(dm, h.alice, "twin", "insights", twin="sam"), 60)
    await h.fake.wait_for(lambda: insights.followups, 60, "insights")
    assert "Top words:" in insights.text and PLANTED in insights.text
    (name, png), = insights.files
    assert name == "sam-insights.png" and png.startswith(b"\x89PNG")


async def test_share_where_allowed_and_a_member_chats_with_the_ai_label(harness, twin):
    h, dm = harness, twin
    refused = await done(await h.fake.slash(h.hooks, h.alice, "twin", "share", twin="sam"))
    assert "admins have not allowed twins" in refused.text
    allowed = await done(await h.fake.slash(h.hooks, h.admin, "persona", "set", persona="tim", twins_allowed=True))
    assert "Members may share their digital twins here" in allowed.text
    not_twin_binding = await done(await h.fake.slash(h.general, h.admin, "persona", "set", persona="sam"))
    assert "only where its owner shares it" in not_twin_binding.text
    before = await done(await h.fake.slash(h.hooks, h.bob, "chat", persona="sam"))
    assert "isn't shared in this channel" in before.text and not h.fake.threads()
    bob_share = await done(await h.fake.slash(h.hooks, h.bob, "twin", "share", twin="sam"))
    assert "Only this twin's owner" in bob_share.text
    admin_export = await done(await h.fake.slash(h.general, h.admin, "persona", "export", persona="sam"))
    assert "Only this twin's owner can export it" in admin_export.text and not admin_export.files

    shared = await done(await h.fake.slash(h.hooks, h.alice, "twin", "share", twin="sam"))
    assert "is shared in this channel" in shared.text
    h.bot.pool.pin("sam", h.backend)
    chat = await done(await h.fake.slash(h.hooks, h.bob, "chat", persona="sam"))
    assert "Sam (AI twin) is waiting for you" in chat.text
    thread = int(h.fake.threads()[-1]["id"])
    h.backend.enqueue(["haha yes, the herons are back"])
    await h.say(thread, h.bob, "seen any herons lately?")
    (reply,) = await h.reply_text(thread, 1)
    assert reply == "haha yes, the herons are back"
    (posted,) = h.fake.bot_messages(thread)
    assert posted["author"]["username"] == "Sam (AI twin)" and posted["webhook_id"]

    gone = await done(await h.fake.slash(h.hooks, h.alice, "twin", "unshare", twin="sam"))
    assert "no longer shared (1 channel(s))" in gone.text
    after = await done(await h.fake.slash(h.hooks, h.bob, "chat", persona="sam"))
    assert "isn't shared in this channel" in after.text

    # The owner chats with the twin in the DM.
    await done(await h.fake.slash(dm, h.alice, "twin", "chat", twin="sam"))
    h.backend.enqueue(["hey you"])
    await h.say(dm, h.alice, "hi me")
    assert (await h.reply_text(dm, 2))[-1] == "hey you"


async def test_non_owner_is_refused_everything(harness, twin, tmp_path):
    h = harness
    bob_dm = h.fake.add_dm(h.bob)
    upload = h.fake.attachment("twitter.zip", write_archive(tmp_path / "t.zip").read_bytes())
    for sub, options in [("import", {"file": upload}), ("build", {}), ("delete", {}), ("insights", {}), ("chat", {})]:
        record = await done(await h.fake.slash(bob_dm, h.bob, "twin", sub, twin="sam", **options))
        assert record.text == "Only this twin's owner can do that.", sub
    assert not leftovers(h) and await source_count(h) == 0 and "sam" in h.bot.personas
    # Buttons of the owner's import are the owner's too.
    record = await import_archive(h, twin, tmp_path)
    press = await done(await h.fake.click(record, h.bob, "twin:attest"))
    assert "Only this twin's owner" in press.text and not leftovers(h)


async def test_delete_removes_every_row_and_file(harness, twin, tmp_path):
    h, dm = harness, twin
    record = await import_archive(h, dm, tmp_path)
    attest = await h.fake.click(record, h.alice, "twin:attest")
    await content_of(h, attest, "Which of these is you?")
    await content_of(h, await h.fake.click(attest, h.alice, "twin:identity:0"), "Imported into")
    assert await source_count(h) == 1
    confirm = await done(await h.fake.slash(dm, h.alice, "twin", "delete", twin="sam"))
    assert "Continue?" in confirm.text
    deleted = await h.fake.click(confirm, h.alice, confirm.custom_ids()[0])
    await content_of(h, deleted, "Deleted sam")
    assert "sam" not in h.bot.personas and not (h.settings.core.member_personas_dir / "sam").exists()
    db = sqlite3.connect(h.settings.core.db_path)
    for table in ("sources", "source_messages", "twins", "twin_shares", "dataset_versions", "model_versions"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    db.close()
    for path in h.settings.core.data_dir.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path


async def test_bad_inputs_leave_nothing_behind(harness, twin, tmp_path):
    h, dm = harness, twin
    wrong = await import_archive(h, dm, tmp_path, "holiday.pdf", b"%PDF-1.4 not an export")
    assert "is not an export I can read" in wrong.text and not wrong.custom_ids()

    h.settings.core.twin_upload_max_mb = 0.001
    big = await import_archive(h, dm, tmp_path)
    assert "uploads may be at most" in big.text and not big.custom_ids()
    h.settings.core.twin_upload_max_mb = 100.0

    whole = write_archive(tmp_path / "whole.zip").read_bytes()
    truncated = await import_archive(h, dm, tmp_path, "twitter.zip", whole[: len(whole) // 2])
    attest = await h.fake.click(truncated, h.alice, "twin:attest")
    assert "send it again" in await content_of(h, attest, "damaged or incomplete zip")

    unknown = await import_archive(h, dm, tmp_path, "notes.txt", b"just some notes\nnothing like a chat export\n")
    attest = await h.fake.click(unknown, h.alice, "twin:attest")
    assert "`kind` option" in await content_of(h, attest, "couldn't tell what kind of export")

    # A Messenger export whose participant list names someone who never wrote: choosing them imports nothing.
    messenger = json.dumps({"participants": [{"name": "Sam Jones"}, {"name": "Quiet Quentin"}],
                            "messages": [{"sender_name": "Sam Jones", "timestamp_ms": 1600000000000 + i, "content": f"hello {i}"}
                                         for i in range(3)]}).encode()
    record = await import_archive(h, dm, tmp_path, "message_1.json", messenger)
    attest = await h.fake.click(record, h.alice, "twin:attest")
    await content_of(h, attest, "Which of these is you?")
    labels = [c["label"] for c in attest.message["components"][0]["components"]]
    quiet = next(i for i, label in enumerate(labels) if label.startswith("Quiet Quentin"))
    chosen = await h.fake.click(attest, h.alice, f"twin:identity:{quiet}")
    assert "no text messages by 'Quiet Quentin'" in await content_of(h, chosen, "Nothing was imported")
    assert not leftovers(h) and await source_count(h) == 0


async def test_privacy_forget_deletes_the_members_twins(harness, twin, tmp_path):
    h, dm = harness, twin
    record = await import_archive(h, dm, tmp_path)
    attest = await h.fake.click(record, h.alice, "twin:attest")
    await content_of(h, attest, "Which of these is you?")
    await content_of(h, await h.fake.click(attest, h.alice, "twin:identity:0"), "Imported into")
    forget = await done(await h.fake.slash(h.general, h.alice, "privacy", "forget"))
    click = await done(await h.fake.click(forget, h.alice, forget.custom_ids()[0]))
    await h.fake.wait_for(lambda: "Done" in (click.message.get("content") or ""), 10, "forget done")
    assert "sam" not in h.bot.personas and not (h.settings.core.member_personas_dir / "sam").exists()
    assert await source_count(h) == 0
    for path in h.settings.core.data_dir.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
