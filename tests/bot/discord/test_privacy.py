"""Consent, logging, feedback and privacy commands end to end."""
import asyncio
import json
import logging

from bot.store import consent as consent_store


async def _count(db, sql, *args) -> int:
    async with db.execute(sql, args) as cur:
        return (await cur.fetchone())[0]


async def test_consent_shows_policy_status_and_buttons(harness):
    h = harness
    record = await h.fake.slash(h.general, h.alice, "consent")
    await asyncio.wait_for(record.done.wait(), 5)
    assert "policy version 1" in record.text and "You have not opted in" in record.text
    assert record.responses[0]["data"]["flags"] & 64
    assert record.custom_ids() == ["personabot:consent:opt-in", "personabot:consent:opt-out"]
    click = await h.fake.click(record, h.alice, "personabot:consent:opt-in")
    await asyncio.wait_for(click.done.wait(), 5)
    assert click.responses[0]["type"] == 7 and "You opted in on" in click.message["content"]
    stored = await consent_store.get_consent(h.db, str(h.alice))
    assert stored.status == "opted_in" and stored.policy_version == "1" and stored.updated_at


async def test_opt_in_stores_the_exchange_and_opt_out_stops_at_once(harness):
    h = harness
    await h.opt_in(h.alice)
    h.backend.enqueue(["Stored reply."])
    await h.say(h.general, h.alice, "please remember this", mention=True)
    await h.reply_text(h.general)
    async with h.db.execute("SELECT role, content, external_id, model FROM messages ORDER BY id") as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    reply_id = h.fake.bot_messages(h.general)[0]["id"]
    assert rows[0][:2] == ("user", "please remember this")
    assert rows[1] == ("assistant", "Stored reply.", reply_id, "scripted")

    record = await h.fake.slash(h.general, h.alice, "consent")
    await asyncio.wait_for(record.done.wait(), 5)
    click = await h.fake.click(record, h.alice, "personabot:consent:opt-out")
    await asyncio.wait_for(click.done.wait(), 5)
    h.backend.enqueue(["Not stored."])
    await h.say(h.general, h.alice, "forget this one", mention=True)
    await h.reply_text(h.general, count=2)
    assert await _count(h.db, "SELECT COUNT(*) FROM messages") == 2


async def test_non_consenting_members_text_is_nowhere(harness, caplog, settings):
    h = harness
    caplog.set_level(logging.DEBUG)
    secret = "zebra-7f3a-secret-phrase"
    await h.opt_in(h.alice)
    h.backend.responder = lambda messages: ["Thanks, both of you."]
    # Bob never opted in: his message is context for Alice's turn, and answered itself.
    await h.say(h.general, h.bob, f"my private note: {secret}", mention=True)
    await h.reply_text(h.general)
    await h.say(h.general, h.alice, "and what about me?", mention=True)
    await h.reply_text(h.general, count=2)
    alice_turn, _ = h.backend.calls[-1]
    assert any(secret in m["content"] for m in alice_turn), "Bob's message served as context for Alice's turn"
    await h.fake.react(h.general, int(h.fake.bot_messages(h.general)[0]["id"]), h.bob, "👍")
    await asyncio.sleep(0.1)
    assert await _count(h.db, "SELECT COUNT(*) FROM messages") == 2      # only Alice's exchange
    await h.db.commit()
    blob = b""
    for path in settings.core.db_path.parent.glob(settings.core.db_path.name + "*"):   # .db, -wal, -shm
        blob += path.read_bytes()
    assert secret.encode() not in blob
    assert secret not in caplog.text
    assert caplog.records, "logs were captured"


async def test_thumbs_up_is_stored_as_feedback(harness):
    h = harness
    await h.opt_in(h.alice)
    h.backend.enqueue(["Helpful reply."])
    await h.say(h.general, h.alice, "help", mention=True)
    await h.reply_text(h.general)
    reply_id = int(h.fake.bot_messages(h.general)[0]["id"])
    await h.fake.react(h.general, reply_id, h.alice, "👍")
    await h.fake.wait_for(lambda: True)
    for _ in range(50):
        if await _count(h.db, "SELECT COUNT(*) FROM feedback") == 1:
            break
        await asyncio.sleep(0.02)
    async with h.db.execute("SELECT f.value, f.user_id, m.external_id FROM feedback f JOIN messages m ON m.id = f.message_id") as cur:
        assert tuple(await cur.fetchone()) == (1, str(h.alice), str(reply_id))


async def test_privacy_export_and_forget(harness):
    h = harness
    await h.opt_in(h.alice)
    h.backend.enqueue(["Noted."])
    await h.say(h.general, h.alice, "my favourite colour is teal", mention=True)
    await h.reply_text(h.general)

    export = await h.fake.slash(h.general, h.alice, "privacy", "export")
    await h.fake.wait_for(lambda: export.files, what="the export file")
    assert export.responses[0]["data"]["flags"] & 64                       # deferred ephemerally
    assert export.followups[0]["flags"] & 64                                # and the file is ephemeral
    name, data = export.files[0]
    assert name == f"personabot-{h.alice}.json"
    dump = json.loads(data)
    assert dump["user_id"] == str(h.alice)
    assert [m["content"] for m in dump["exchanges"]["messages"]] == ["my favourite colour is teal", "Noted."]
    assert dump["consent"]["consent"]["status"] == "opted_in"

    forget = await h.fake.slash(h.general, h.alice, "privacy", "forget")
    await asyncio.wait_for(forget.done.wait(), 5)
    assert "Continue?" in forget.text
    confirm_id = forget.custom_ids()[0]
    # Another member cannot press Alice's button.
    await h.fake.click(forget, h.bob, confirm_id)
    await asyncio.sleep(0.1)
    assert await _count(h.db, "SELECT COUNT(*) FROM messages") == 2
    click = await h.fake.click(forget, h.alice, confirm_id)
    await asyncio.wait_for(click.done.wait(), 5)
    assert "deleted" in click.message["content"]
    assert await _count(h.db, "SELECT COUNT(*) FROM messages") == 0
    assert await _count(h.db, "SELECT COUNT(*) FROM consent WHERE user_id = ?", str(h.alice)) == 0
