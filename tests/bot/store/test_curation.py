"""The curation queue in the store: items, signals, order, filters, guild isolation, decisions, privacy."""
import pytest

from bot.persona import load_personas
from bot.persona.spec import CurationSpec
from bot.store import channels, consent, curation, exchanges, feedback, privacy
from bot.store.curation import QueueFilter
from tests.conftest import REPO


@pytest.fixture
def personas():
    return load_personas(REPO / "personas")


async def log(db, text, reply, *, user="u1", key="discord:100", guild="g1", persona="tim", error=None):
    logged = await exchanges.log_exchange(db, persona=persona, conversation_key=key, user_id=user, user_content=text,
                                          reply_content=reply, model="m", reply_external_id=f"r-{text}", guild_id=guild,
                                          error=error)
    assert logged is not None
    return logged.reply_message_id


async def members(db, *names):
    for n in names:
        await consent.set_consent(db, n, True, "1", display_name=n.capitalize())


async def test_order_thumbs_down_then_up_then_newest_with_signals(db, personas):
    await members(db, "u1", "u2")
    plain_old = await log(db, "q1", "An old plain reply.")
    liked = await log(db, "q2", "A liked reply.")
    disliked = await log(db, "q3", "TIM: a disliked reply\nUser: and more")
    plain_new = await log(db, "q4", "A new plain reply.")
    await feedback.record_feedback(db, user_id="u2", reply_external_id="r-q2", value=1)
    await feedback.record_feedback(db, user_id="u2", reply_external_id="r-q3", value=-1)
    await feedback.record_feedback(db, user_id="u1", reply_external_id="r-q3", value=1)
    items = await curation.list_items(db, QueueFilter(persona="tim"), personas=personas)
    assert [i.id for i in items] == [disliked, liked, plain_new, plain_old]
    bad = items[0].signals
    assert (bad.thumbs_up, bad.thumbs_down, bad.length) == (1, 1, len("TIM: a disliked reply\nUser: and more"))
    assert bad.label_leak == "TIM:" and not bad.runaway and bad.error is None
    assert items[1].signals.flags == [] and items[1].channel_id == "100" and items[1].guild_id == "g1"


async def test_runaway_and_backend_error_are_flagged(db, personas):
    await members(db, "u1")
    limit = personas["tim"].sampling.max_tokens
    await log(db, "long", "word " * (limit + 5))
    await log(db, "err", "Sorry, I lost my train of thought.", error="BackendError")
    items = {i.context[-1].text: i for i in await curation.list_items(db, QueueFilter(), personas=personas)}
    assert items["long"].signals.runaway and items["long"].signals.flags == ["runaway length"]
    assert items["err"].signals.flags == ["backend error: BackendError"]


async def test_context_holds_the_turns_that_led_to_it_within_the_budget(db, personas):
    await members(db, "u1", "u2")
    for i in range(30):
        await log(db, f"turn {i} " + "filler " * 60, f"answer {i}", user="u1" if i % 2 else "u2")
    last = await log(db, "the last question", "the last answer")
    item = await curation.get_item(db, last, personas=personas)
    assert item.context[-1] == curation.ContextTurn("member", "U1", "the last question")
    assert item.context[-2] == curation.ContextTurn("persona", "TIM", "answer 29")
    # Bounded by the persona's budget, not the whole conversation.
    assert 3 <= len(item.context) < 60
    approx = sum(len(t.text) for t in item.context) / 4
    assert approx <= personas["tim"].context_budget


async def test_filters_persona_channel_thread_guild_status_and_dates(db, personas):
    await members(db, "u1")
    a = await log(db, "a", "ra", key="discord:100", guild="g1")
    b = await log(db, "b", "rb", key="discord:200", guild="g2")
    c = await log(db, "c", "rc", key="discord:300", guild="g1", persona="eve")
    await channels.record_chat_thread(db, "555", "tim", parent_channel_id="100")
    t = await log(db, "t", "rt", key="discord:555", guild="g1")
    await curation.curate(db, b, status="approved", curator="cli:me")

    async def ids(**kw):
        return sorted(i.id for i in await curation.list_items(db, QueueFilter(**kw), personas=personas))

    assert await ids(persona="tim") == sorted([a, t])
    assert await ids(persona="tim", status=None) == sorted([a, b, t])
    assert await ids(channel="100") == sorted([a, t])           # a thread of #100 counts as #100
    assert await ids(channel="discord:555") == [t]
    assert await ids(guild="g1") == sorted([a, c, t])
    assert await ids(status="approved") == [b]
    assert await ids(since="2000-01-01", until="2999-12-31") == sorted([a, c, t])
    assert await ids(until="2001-01-01") == []
    with pytest.raises(ValueError, match="since must be an ISO date"):
        QueueFilter(since="yesterday")
    with pytest.raises(ValueError, match="status must be one of"):
        QueueFilter(status="maybe")


async def test_guild_isolation_in_the_queue_unless_shared(db, personas):
    await members(db, "u1")
    mine = await log(db, "mine", "r1", guild="g1")
    theirs = await log(db, "theirs", "r2", key="discord:200", guild="g2")
    dm = await log(db, "dm", "r3", key="discord:300", guild=None)
    seen_from_g1 = await curation.list_items(db, QueueFilter(in_guild="g1"))
    assert [i.id for i in seen_from_g1] == [mine]
    shared = await curation.list_items(db, QueueFilter(in_guild="g1", shared=("tim",), dm_personas=("tim",)))
    assert sorted(i.id for i in shared) == sorted([mine, theirs, dm])
    assert (await curation.counts(db, "tim", QueueFilter(in_guild="g2")))["pending"] == 1


async def test_training_scope(db, personas):
    tim = personas["tim"]
    await members(db, "u1")
    await log(db, "x", "y", guild="g1")
    assert (await curation.training_scope(db, tim)).guilds == {"g1"}          # its only guild
    await log(db, "x", "y", key="discord:200", guild="g2")
    ambiguous = await curation.training_scope(db, tim)
    assert ambiguous.guilds == frozenset() and "shared" in ambiguous.note
    await channels.bind_channel(db, "200", "tim", guild_id="g2")
    assert (await curation.training_scope(db, tim)).guilds == {"g2"}          # bound wins
    shared = tim.model_copy(update={"curation": CurationSpec(shared=True)})
    assert (await curation.training_scope(db, shared)).guilds is None


async def test_decisions_record_who_when_and_keep_the_original(db):
    await members(db, "u1")
    rid = await log(db, "2+2?", "5")
    with pytest.raises(ValueError, match="needs the corrected reply"):
        await curation.curate(db, rid, status="corrected", curator="cli:me", correction="  ")
    assert await curation.curate(db, rid, status="approved", curator="42", via="discord")
    assert await curation.curate(db, rid, status="corrected", curator="cli:me", correction=" 4 ")
    item = await curation.get_item(db, rid)
    assert (item.reply, item.correction, item.final_reply, item.status, item.curated_by) == ("5", "4", "4", "corrected", "cli:me")
    trail = await curation.decisions(db, rid)
    assert [(d["status"], d["curator"], d["via"]) for d in trail] == [("approved", "42", "discord"), ("corrected", "cli:me", "terminal")]
    assert all(d["at"] for d in trail)
    assert not await curation.curate(db, 9999, status="approved", curator="cli:me")


async def test_opt_out_leaves_the_queue_at_once_and_forget_deletes(db):
    await members(db, "u1", "u2")
    gone = await log(db, "bye", "r", user="u1")
    stays = await log(db, "hi", "r", user="u2")
    await consent.set_consent(db, "u1", False, "1")
    assert [i.id for i in await curation.list_items(db)] == [stays]
    assert not await curation.curate(db, gone, status="approved", curator="cli:me")   # a stale button can't approve it
    await privacy.forget_user(db, "u2", hooks=[])
    assert await curation.list_items(db) == []


async def test_count_approved_since(db):
    await members(db, "u1")
    first = await log(db, "a", "b")
    await curation.curate(db, first, status="approved", curator="cli:me")
    cutoff = (await curation.get_item(db, first)).curated_at
    second = await log(db, "c", "d", key="discord:200", guild="g2")
    await curation.curate(db, second, status="corrected", curator="cli:me", correction="e")
    assert await curation.count_approved(db, "tim", None) == 2
    assert await curation.count_approved(db, "tim", cutoff) == 1
    assert await curation.count_approved(db, "tim", None, scope=curation.Scope(frozenset({"g1"}))) == 1


async def test_removing_a_reaction_removes_the_feedback(db):
    await members(db, "u1")
    await log(db, "q", "r")
    assert await feedback.record_feedback(db, user_id="u1", reply_external_id="r-q", value=-1)
    assert not await feedback.remove_feedback(db, user_id="u1", reply_external_id="r-q", value=1)  # not that one
    assert (await curation.list_items(db))[0].signals.thumbs_down == 1
    assert await feedback.remove_feedback(db, user_id="u1", reply_external_id="r-q", value=-1)
    assert (await curation.list_items(db))[0].signals.thumbs_down == 0


async def test_privacy_export_and_delete_of_decisions(db):
    await members(db, "u1", "curator")
    rid = await log(db, "q", "bad")
    await curation.curate(db, rid, status="corrected", curator="curator", correction="good", via="discord")
    as_curator = await privacy.export_user(db, "curator")
    assert as_curator["curation"]["decisions_made"][0]["correction"] == "good"
    as_member = await privacy.export_user(db, "u1")
    assert as_member["curation"]["decisions_on_replies_to_you"][0]["status"] == "corrected"
    counts = await privacy.forget_user(db, "curator", hooks=[])
    assert counts["curation"] == 2
    assert (await curation.decisions(db, rid))[0]["curator"] is None
    assert (await curation.get_item(db, rid)).curated_by is None
    await privacy.forget_user(db, "u1", hooks=[])
    async with db.execute("SELECT COUNT(*) FROM curation_decisions") as cur:
        assert (await cur.fetchone())[0] == 0          # decisions on the member's replies went with them


async def test_context_stops_at_a_long_silence(db):
    await members(db, "u1")
    await log(db, "yesterday's question", "yesterday's answer")
    await db.execute("UPDATE messages SET created_at = '2020-01-01T10:00:00.000+00:00'")
    await db.commit()
    today = await log(db, "today's question", "today's answer")
    item = await curation.get_item(db, today)
    assert [t.text for t in item.context] == ["today's question"]


async def test_migration_backfills_the_guild_of_earlier_conversations(tmp_path):
    from bot.store.db import connect, migrate

    db = await connect(tmp_path / "old.db")
    try:
        await migrate(db, target=9)
        await db.executescript("""
            INSERT INTO channel_bindings(channel_id, guild_id, persona, set_at) VALUES ('100', 'g1', 'tim', 'now');
            INSERT INTO chat_threads(thread_id, parent_channel_id, persona, opened_at) VALUES ('555', '100', 'tim', 'now');
            INSERT INTO conversations(persona, key, started_at) VALUES ('tim', 'discord:100', 'now'), ('tim', 'discord:555', 'now'),
                                                                       ('tim', 'discord:777', 'now'), ('tim', 'cli:x', 'now');
        """)
        await migrate(db)
        async with db.execute("SELECT key, guild_id FROM conversations ORDER BY id") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [
                ("discord:100", "g1"), ("discord:555", "g1"), ("discord:777", None), ("cli:x", None)]
    finally:
        await db.close()
