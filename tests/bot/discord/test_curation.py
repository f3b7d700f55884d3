"""/curate through the fake Discord and the real discord.py: access, decisions, the modal, restarts,
guild isolation, stats and reaction removal."""
import asyncio
import json
import sys

import pytest

from bot.curation.access import REFUSAL
from bot.discord_bot import PersonaBot
from bot.persona.spec import CurationSpec
from bot.store import consent, curation, exchanges

BUTTONS = ["Approve", "Reject", "Correct", "Skip"]


async def chat(h, text: str, reply: str, user=None) -> int:
    """`user` (default alice, opted in) asks the default persona (TIM) in #general; returns the item id."""
    user = user or h.alice
    h.backend.enqueue([reply])
    before = len(h.fake.bot_messages(h.general))
    await h.say(h.general, user, text, mention=True)
    await h.fake.wait_for(lambda: len(h.fake.bot_messages(h.general)) > before, 5, "the reply")
    await h.settle()
    async with h.db.execute("SELECT MAX(id) FROM messages WHERE role = 'assistant'") as cur:
        return (await cur.fetchone())[0]


async def done(record, timeout=5):
    await asyncio.wait_for(record.done.wait(), timeout)
    return record


def labels(record) -> list[str]:
    rows = (record.message or {}).get("components") or []
    return [c.get("label") for row in rows for c in row.get("components", [])]


def button(record, label: str) -> str:
    rows = (record.message or {}).get("components") or []
    return next(c["custom_id"] for row in rows for c in row["components"] if c.get("label") == label)


async def status_of(h, item_id: int) -> str:
    return (await curation.get_item(h.db, item_id)).status


async def test_plain_member_is_refused_and_sees_no_item(harness):
    h = harness
    await h.opt_in(h.alice)
    item = await chat(h, "what is a fraction?", "SECRET-REPLY-TEXT about fractions")
    refused = await done(await h.fake.slash(h.general, h.bob, "curate", "review"))
    assert refused.responses[0]["data"]["flags"] & 64
    assert refused.text == REFUSAL and "SECRET" not in refused.text and refused.custom_ids() == []
    # The bot checks every interaction: a button from an admin's review pressed by a plain member.
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    assert "SECRET-REPLY-TEXT" in review.text
    click = await done(await h.fake.click(review, h.bob, button(review, "Approve")))
    assert click.responses[0]["type"] == 4 and click.responses[0]["data"]["flags"] & 64
    assert click.responses[0]["data"]["content"] == REFUSAL
    assert await status_of(h, item) == "pending"
    stats = await done(await h.fake.slash(h.general, h.bob, "curate", "stats"))
    assert stats.text == REFUSAL
    unknown = await done(await h.fake.slash(h.general, h.admin, "curate", "review", persona="no`body"))
    assert unknown.text == "There is no persona called `no'body`." and unknown.responses[0]["data"]["flags"] & 64


async def test_admin_approves_rejects_and_corrects_through_the_modal(harness):
    h = harness
    await h.opt_in(h.alice)
    first = await chat(h, "first question", "First reply.")
    second = await chat(h, "second question", "Second reply.")
    third = await chat(h, "third question", "It is five.")
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review", persona="tim"))
    assert review.responses[0]["data"]["flags"] & 64
    assert labels(review) == BUTTONS
    text = review.message["content"]
    # Newest first; display names, never ids; the signals.
    assert "It is five." in text and "**alice:** third question" in text and "#general" in text
    assert str(h.alice) not in text and "👍 0 · 👎 0" in text and "3 pending" in text

    approve = await done(await h.fake.click(review, h.admin, button(review, "Approve")))
    assert approve.responses[0]["type"] == 7                       # edited in place
    assert f"Approved item {third}" in approve.message["content"] and "Second reply." in approve.message["content"]
    reject = await done(await h.fake.click(approve, h.admin, button(approve, "Reject")))
    assert f"Rejected item {second}" in reject.message["content"] and "First reply." in reject.message["content"]

    correct = await done(await h.fake.click(reject, h.admin, button(reject, "Correct")))
    modal = correct.modal
    assert modal is not None and correct.responses[0]["type"] == 9
    inputs = [c for row in modal["components"] for c in row.get("components", [row.get("component")]) if c]
    assert inputs[0]["value"] == "First reply."                     # prefilled with the reply
    submit = await done(await h.fake.submit_modal(correct, h.admin, {inputs[0]["custom_id"]: "A corrected first reply."}))
    assert submit.responses[0]["type"] == 7
    assert f"Corrected item {first}" in submit.message["content"] and "Nothing left to review" in submit.message["content"]
    assert not submit.message.get("components")

    assert [await status_of(h, i) for i in (first, second, third)] == ["corrected", "rejected", "approved"]
    fixed = await curation.get_item(h.db, first)
    assert (fixed.reply, fixed.correction, fixed.curated_by) == ("First reply.", "A corrected first reply.", str(h.admin))
    assert (await curation.decisions(h.db, third))[0]["via"] == "discord"


async def test_an_item_leaves_the_queue_when_its_member_opts_out(harness):
    h = harness
    await h.opt_in(h.alice)
    item = await chat(h, "opting out soon", "A reply to someone leaving.")
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    assert "A reply to someone leaving." in review.text
    record = await done(await h.fake.slash(h.general, h.alice, "consent"))
    await done(await h.fake.click(record, h.alice, "personabot:consent:opt-out"))
    click = await done(await h.fake.click(review, h.admin, button(review, "Approve")))
    assert "left the queue" in click.message["content"] and "Nothing left to review" in click.message["content"]
    async with h.db.execute("SELECT curation_status FROM messages WHERE id = ?", (item,)) as cur:
        assert (await cur.fetchone())[0] == "pending"


async def test_a_reply_cut_short_by_a_backend_error_is_flagged_and_an_apology_alone_is_not_kept(harness):
    from bot.backends.base import BackendError

    h = harness
    await h.opt_in(h.alice)
    h.backend.enqueue(BackendError("down"))
    await h.say(h.general, h.alice, "first try", mention=True)
    await h.reply_text(h.general)
    h.backend.enqueue(["Half an answer", BackendError("connection reset")])
    await h.say(h.general, h.alice, "second try", mention=True)
    await h.reply_text(h.general, count=2)
    items = await curation.list_items(h.db)
    assert len(items) == 1 and items[0].reply.startswith("Half an answer")
    assert items[0].signals.flags == ["backend error: BackendError"]
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    assert "⚠️ backend error: BackendError" in review.text


async def test_skip_moves_on_and_the_end_says_so(harness):
    h = harness
    await h.opt_in(h.alice)
    older = await chat(h, "older", "Older reply.")
    await chat(h, "newer", "Newer reply.")
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    skip = await done(await h.fake.click(review, h.admin, button(review, "Skip")))
    assert "Older reply." in skip.message["content"]
    end = await done(await h.fake.click(skip, h.admin, button(skip, "Skip")))
    assert "2 pending item(s) skipped" in end.message["content"]
    assert await status_of(h, older) == "pending"


async def test_member_with_the_curator_role_may_curate(harness):
    h = harness
    role = await h.fake.create_role("Tutors")
    h.fake.give_role(h.bob, role)
    tim = h.bot.personas["tim"]
    h.bot.personas["tim"] = tim.model_copy(update={"curation": CurationSpec(curator_role="tutors")})
    await h.opt_in(h.alice)
    item = await chat(h, "help me", "Happy to help.")
    review = await done(await h.fake.slash(h.general, h.bob, "curate", "review"))
    assert "Happy to help." in review.text and labels(review) == BUTTONS
    await done(await h.fake.click(review, h.bob, button(review, "Approve")))
    assert await status_of(h, item) == "approved"
    other = await done(await h.fake.slash(h.general, h.bob, "curate", "review", persona="eve"))
    assert other.text == REFUSAL


class Restarted:
    """The harness's bot stopped and a new one started on the same database and fake Discord."""

    def __init__(self, h):
        self.h = h
        self.errors: list[str] = []

    async def __aenter__(self):
        old = self.h.bot
        await old.close()
        self.bot = PersonaBot(settings=self.h.settings, db=self.h.db, pool=old.pool, engine=old.engine,
                              personas=old.personas, guild_ready_timeout=0.01)

        async def on_error(event, *args, **kwargs):
            self.errors.append(f"on_error in {event}: {sys.exc_info()[1]!r}")

        self.bot.on_error = on_error
        self.task = asyncio.create_task(self.bot.start("fake-token"))
        await asyncio.wait_for(self.bot.wait_until_ready(), 10)
        return self

    async def __aexit__(self, *exc):
        await self.bot.close()
        await asyncio.wait_for(self.task, 10)
        assert not self.errors, self.errors


async def test_a_button_from_before_a_restart_still_works(harness):
    h = harness
    await h.opt_in(h.alice)
    item = await chat(h, "before the restart", "Reply before the restart.")
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    async with Restarted(h):
        click = await done(await h.fake.click(review, h.admin, button(review, "Approve")))
        assert click.responses[0]["type"] == 7 and f"Approved item {item}" in click.message["content"]
        assert await status_of(h, item) == "approved"


async def test_a_correction_modal_opened_before_a_restart_still_submits(harness):
    h = harness
    await h.opt_in(h.alice)
    item = await chat(h, "fix me later", "A reply to fix.")
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    correct = await done(await h.fake.click(review, h.admin, button(review, "Correct")))
    field = correct.modal["components"][0]["components"][0]["custom_id"]
    async with Restarted(h):
        submit = await done(await h.fake.submit_modal(correct, h.admin, {field: "The fixed reply."}))
        assert submit.responses[0]["type"] == 7 and f"Corrected item {item}" in submit.message["content"]
        # A plain member's submission is refused as well.
        refused = await done(await h.fake.submit_modal(correct, h.bob, {field: "vandalism"}))
        assert refused.responses[0]["data"]["content"] == REFUSAL
    fixed = await curation.get_item(h.db, item)
    assert (fixed.status, fixed.correction) == ("corrected", "The fixed reply.")


async def test_one_guilds_items_never_show_in_anothers_queue(harness):
    h = harness
    await h.opt_in(h.alice)
    await chat(h, "ours", "Our guild's reply.")
    await consent.set_consent(h.db, "elsewhere-member", True, "1", display_name="Zed")
    theirs = (await exchanges.log_exchange(h.db, persona="tim", conversation_key="discord:42", user_id="elsewhere-member",
                                           user_content="theirs", reply_content="OTHER-GUILD-REPLY", guild_id="424242",
                                           reply_external_id="x")).reply_message_id
    review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    assert "Our guild's reply." in review.text and "1 pending" in review.text
    end = await done(await h.fake.click(review, h.admin, button(review, "Skip")))
    assert "OTHER-GUILD-REPLY" not in end.message["content"]
    # Shared personas are curated across guilds...
    tim = h.bot.personas["tim"]
    h.bot.personas["tim"] = tim.model_copy(update={"curation": CurationSpec(shared=True)})
    shared = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
    assert "2 pending" in shared.text and "OTHER-GUILD-REPLY" in shared.text     # the newest first
    # ...and once it is no longer shared, that old button is refused: the check runs on every click.
    h.bot.personas["tim"] = tim
    refused = await done(await h.fake.click(shared, h.admin, button(shared, "Approve")))
    assert refused.responses[0]["data"]["content"] == REFUSAL and await status_of(h, theirs) == "pending"


async def test_stats_counts_by_status_and_approved_since_training(harness):
    h = harness
    await h.opt_in(h.alice)
    a = await chat(h, "a", "Reply a.")
    await chat(h, "b", "Reply b.")
    await curation.curate(h.db, a, status="approved", curator="cli:sam")
    stats = await done(await h.fake.slash(h.general, h.admin, "curate", "stats", persona="tim"))
    assert stats.responses[0]["data"]["flags"] & 64
    assert "1 pending · 1 approved · 0 rejected · 0 corrected" in stats.text
    assert "1 approved or corrected so far (not trained yet)" in stats.text


async def test_removing_a_reaction_removes_the_feedback(harness):
    h = harness
    await h.opt_in(h.alice)
    item = await chat(h, "rate me", "A reply to rate.")
    message_id = int(h.fake.bot_messages(h.general)[-1]["id"])
    await h.fake.react(h.general, message_id, h.alice, "👎")
    await h.fake.wait_for(lambda: True)
    for _ in range(50):
        if (await curation.get_item(h.db, item)).signals.thumbs_down == 1:
            break
        await asyncio.sleep(0.02)
    assert (await curation.get_item(h.db, item)).signals.thumbs_down == 1
    await h.fake.unreact(h.general, message_id, h.alice, "👎")
    for _ in range(50):
        if (await curation.get_item(h.db, item)).signals.thumbs_down == 0:
            break
        await asyncio.sleep(0.02)
    assert (await curation.get_item(h.db, item)).signals.thumbs_down == 0


@pytest.mark.slow
async def test_smollm2_reply_curated_in_discord_lands_in_the_next_dataset(harness, real_models_dir):
    """The whole journey with the embedded model: members chat, an admin approves in Discord, the
    reply is in the dataset built next."""
    from bot.backends.local import LocalBackend
    from bot.persona.spec import ModelSpec
    from bot.settings import load_settings
    from trainer.dataset.build import BuildOptions, build_dataset

    h = harness
    real = load_settings(data_dir=h.settings.core.data_dir, models_dir_override=real_models_dir, local_device="cpu")
    backend = LocalBackend.from_spec(ModelSpec(), real)
    h.bot.pool.pin("tim", backend)
    try:
        await h.opt_in(h.alice)
        await h.say(h.general, h.alice, "What is photosynthesis? Answer in one sentence.", mention=True)
        await h.fake.wait_for(lambda: h.fake.bot_messages(h.general), 300, "the model's reply")
        await asyncio.wait_for(h.bot.conversations.drain(), 300)
        reply = h.fake.bot_messages(h.general)[-1]["content"]
        assert len(reply.split()) >= 3, reply

        review = await done(await h.fake.slash(h.general, h.admin, "curate", "review"))
        assert reply[:40] in review.text and "**alice:** What is photosynthesis?" in review.text
        click = await done(await h.fake.click(review, h.admin, button(review, "Approve")))
        assert "Approved item" in click.message["content"]
    finally:
        await backend.aclose()
    result = await build_dataset(h.db, persona=h.bot.personas["tim"], data_dir=h.settings.core.data_dir,
                                 options=BuildOptions(val_fraction=0.01, dedup=False))
    lines = []
    for name in ("train.jsonl", "val.jsonl"):
        lines += [json.loads(line) for line in (result.folder / name).read_text().splitlines()]
    assistant = [m["content"] for ex in lines for m in ex["messages"] if m["role"] == "assistant"]
    assert any(reply.strip()[:40] in a for a in assistant), (reply, assistant)
    assert result.manifest["curated"]["by_status"]["approved"] == 1
