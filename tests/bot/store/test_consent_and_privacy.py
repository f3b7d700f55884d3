"""Consent gates the one write path; export and forget cover every store of member data."""
from bot.store import consent, curation, exchanges, feedback, privacy


async def log(db, user="u1", text="hello there", reply="hi!"):
    return await exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id=user,
                                        user_content=text, reply_content=reply, model="m", reply_external_id=f"r-{text}")


async def test_nothing_stored_without_consent(db, settings):
    assert await log(db, text="SECRET-NO-CONSENT") is None
    async with db.execute("SELECT COUNT(*) FROM messages") as cur:
        assert (await cur.fetchone())[0] == 0
    async with db.execute("SELECT COUNT(*) FROM members") as cur:
        assert (await cur.fetchone())[0] == 0
    await db.commit()
    raw = b"".join(p.read_bytes() for p in settings.core.db_path.parent.glob("personabot.db*"))
    assert b"SECRET-NO-CONSENT" not in raw


async def test_opt_in_stores_and_opt_out_stops_at_once(db):
    await consent.set_consent(db, "u1", True, "1")
    first = await log(db, text="first")
    assert first is not None
    await consent.set_consent(db, "u1", False, "1")
    assert await log(db, text="second") is None
    async with db.execute("SELECT content FROM messages WHERE role = 'user'") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["first"]
    record = await consent.get_consent(db, "u1")
    assert record.status == consent.OPTED_OUT and record.policy_version == "1" and record.updated_at


async def test_feedback_only_from_consenting_members(db):
    await consent.set_consent(db, "u1", True, "1")
    await log(db, text="q")
    assert await feedback.record_feedback(db, user_id="u1", reply_external_id="r-q", value=1)
    assert not await feedback.record_feedback(db, user_id="stranger", reply_external_id="r-q", value=-1)
    assert not await feedback.record_feedback(db, user_id="u1", reply_external_id="no-such-reply", value=1)
    exported = await privacy.export_user(db, "u1")
    assert exported["feedback"]["feedback"][0]["value"] == 1


async def test_export_then_forget_everything(db):
    await consent.set_consent(db, "u1", True, "2", display_name="Ana")
    await consent.set_consent(db, "u2", True, "2")
    await log(db, user="u1", text="mine")
    await log(db, user="u2", text="theirs")
    await feedback.record_feedback(db, user_id="u1", reply_external_id="r-mine", value=-1)

    data = await privacy.export_user(db, "u1")
    assert data["consent"]["member"]["display_name"] == "Ana"
    assert data["consent"]["consent"]["policy_version"] == "2"
    assert [m["content"] for m in data["exchanges"]["messages"]] == ["mine", "hi!"]

    seen = []

    async def hook(conn, user_id):
        async with conn.execute("SELECT COUNT(*) FROM messages WHERE author_id = ?", (user_id,)) as cur:
            seen.append((user_id, (await cur.fetchone())[0]))

    counts = await privacy.forget_user(db, "u1", hooks=[hook])
    assert seen == [("u1", 2)]  # hooks see the data before it goes
    assert counts["exchanges"] == 2 and counts["consent"] == 1
    after = await privacy.export_user(db, "u1")
    assert after["consent"]["member"] is None and after["exchanges"]["messages"] == []
    assert after["feedback"]["feedback"] == []
    # The other member is untouched.
    assert len((await privacy.export_user(db, "u2"))["exchanges"]["messages"]) == 2


async def test_curation_keeps_original(db):
    await consent.set_consent(db, "u1", True, "1")
    logged = await log(db, text="what is 2+2", reply="5")
    pending = await curation.list_items(db, curation.QueueFilter(persona="tim"))
    assert [p.reply for p in pending] == ["5"] and [t.text for t in pending[0].context] == ["what is 2+2"]
    assert await curation.curate(db, logged.reply_message_id, status="corrected", curator="admin", correction="4")
    async with db.execute("SELECT content, corrected_content, curation_status FROM messages WHERE id = ?",
                          (logged.reply_message_id,)) as cur:
        assert tuple(await cur.fetchone()) == ("5", "4", "corrected")
    assert (await curation.counts(db, "tim"))["corrected"] == 1
    assert not await curation.curate(db, 9999, status="approved", curator="admin")


async def test_forget_leaves_no_words_in_the_file_free_pages_or_wal(db, settings):
    """secure_delete + a WAL checkpoint: the raw bytes of personabot.db and its WAL hold no forgotten word."""
    await consent.set_consent(db, "u1", True, "1")
    await consent.set_consent(db, "u2", True, "1")
    for i in range(40):      # enough rows to span pages, so deletion frees whole pages too
        await log(db, user="u1", text=f"QUOKKAFORGET{i} " + "x" * 200, reply=f"reply{i}")
    await log(db, user="u2", text="KEEPMEPLEASE")
    await db.commit()
    raw = lambda: b"".join(p.read_bytes() for p in settings.core.db_path.parent.glob("personabot.db*"))
    assert b"QUOKKAFORGET7" in raw()
    await privacy.forget_user(db, "u1", hooks=[])
    data = raw()
    assert b"QUOKKAFORGET" not in data and b"KEEPMEPLEASE" in data
    wal = settings.core.db_path.with_name("personabot.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    async with db.execute("PRAGMA secure_delete") as cur:
        assert (await cur.fetchone())[0] == 1
