"""/persona import and /persona export through the fake Discord; an imported card then greets in
/chat, posts under its own avatar and answers with its lorebook and {{user}} resolved."""
import asyncio
import json

import pytest

from tests.support.tavern_cards import png_card, read_png_chunks, text_payloads, v2_card


async def done(record):
    await asyncio.wait_for(record.done.wait(), 10)
    return record


async def import_mara(h, **options):
    upload = h.fake.attachment("mara.png", png_card({"chara": v2_card()}), "image/png")
    record = await h.fake.slash(h.general, h.admin, "persona", "import", card=upload, **options)
    await h.fake.wait_for(lambda: record.followups, 10, "the import result")
    return record


async def test_import_and_export_are_registered_with_an_attachment_option(harness):
    subs = {o["name"]: o for o in harness.fake.commands["persona"]["options"]}
    options = {o["name"]: o for o in subs["import"]["options"]}
    assert options["card"]["type"] == 11 and options["card"]["required"] is True
    assert subs["export"]["description"].startswith("Get a persona as a character card")


async def test_import_needs_manage_server(harness):
    h = harness
    upload = h.fake.attachment("mara.png", png_card({"chara": v2_card()}), "image/png")
    refused = await done(await h.fake.slash(h.general, h.alice, "persona", "import", card=upload))
    assert "Manage Server" in refused.text and "captain-mara" not in h.bot.personas
    assert not (h.settings.core.member_personas_dir / "captain-mara").exists()


async def test_imported_card_is_served_at_once(harness):
    h = harness
    record = await import_mara(h)
    assert record.responses[0]["type"] == 5 and record.followups[0]["flags"] & 64, "deferred, then an ephemeral answer"
    assert "Imported **Captain Mara** as `captain-mara`" in record.text and "5 lorebook entries" in record.text
    assert (h.settings.core.member_personas_dir / "captain-mara" / "card.json").is_file()
    spec = h.bot.personas["captain-mara"]
    h.bot.pool.pin("captain-mara", h.backend)

    # /chat opens a thread where the card's first message greets the member by name, as the persona,
    # through a webhook whose avatar is the card's image.
    chat = await done(await h.fake.slash(h.hooks, h.alice, "chat", persona="captain-mara"))
    assert "Captain Mara is waiting for you" in chat.text
    thread = int(h.fake.threads()[-1]["id"])
    greeting = (await h.fake.wait_for(lambda: h.fake.bot_messages(thread), 5, "the greeting"))[0]
    assert greeting["content"] == "*Captain Mara looks up from the bar.* Evening, alice. Shut that door, the wind bites."
    assert greeting["author"]["username"] == "Captain Mara"
    hook_id = int(greeting["webhook_id"])
    assert h.fake.webhooks[hook_id]["name"] == "personabot-captain-mara"
    assert h.fake.webhook_avatars[hook_id] == (spec.folder / "avatar.png").read_bytes()
    assert read_png_chunks(h.fake.webhook_avatars[hook_id])[0][0] == b"IHDR"

    # The member talks; the persona answers with lore triggered by the message and {{user}} = bob.
    h.backend.enqueue(["Aye, the lighthouse. Dark for years."])
    await h.say(thread, h.bob, "Is the lighthouse still dark?")
    replies = await h.reply_text(thread, 2)
    assert replies[-1] == "Aye, the lighthouse. Dark for years."
    messages, _ = h.backend.calls[-1]
    assert "The lighthouse has been dark since the storm of '09." in messages[0]["content"]
    assert "Scenario: bob walks into Captain Mara's tavern" in messages[0]["content"]

    info = await done(await h.fake.slash(h.general, h.alice, "persona", "info", persona="captain-mara"))
    assert "From a character card by tester (version 1.2); lorebook of 5 entries." in info.text

    # The same name again is refused, and nothing is overwritten.
    again = await import_mara(h)
    assert "already exists" in again.text


async def test_import_reports_card_errors_by_field(harness):
    h = harness
    bad = json.dumps({"spec": "chara_card_v2", "data": {"name": "X", "alternate_greetings": ["hi"] * 201}}).encode()
    upload = h.fake.attachment("x.json", bad, "application/json")
    record = await h.fake.slash(h.general, h.admin, "persona", "import", card=upload)
    await h.fake.wait_for(lambda: record.followups, 10, "the error")
    assert "I couldn't import `x.json`" in record.text
    assert "data.alternate_greetings: 201 greetings (the limit is 200)" in record.text


async def test_export_returns_the_card_as_an_ephemeral_file(harness):
    h = harness
    refused = await done(await h.fake.slash(h.general, h.alice, "persona", "export", persona="tim"))
    assert "Manage Server" in refused.text and not refused.files

    record = await done(await h.fake.slash(h.general, h.admin, "persona", "export", persona="tim"))
    assert record.responses[0]["data"]["flags"] & 64, "only the caller sees the card"
    assert "not fine-tuned" in record.text
    (filename, data), = record.files
    assert filename == "tim.png"
    payloads = text_payloads(data)
    assert payloads["chara"]["data"]["name"] == "TIM" and payloads["ccv3"]["spec"] == "chara_card_v3"
    assert payloads["ccv3"]["data"]["extensions"]["personabot"]["model"]["base_model"] == "smollm2-135m-instruct"

    as_json = await done(await h.fake.slash(h.general, h.admin, "persona", "export", persona="eve", format="json"))
    (filename, data), = as_json.files
    assert filename == "eve.json" and json.loads(data)["data"]["name"] == "EVE"

    unknown = await done(await h.fake.slash(h.general, h.admin, "persona", "export", persona="nobody"))
    assert "no persona called `nobody`" in unknown.text and not unknown.files


async def test_imported_card_round_trips_through_discord(harness):
    h = harness
    card = v2_card()
    card["data"]["extensions"]["other_frontend"] = {"keep": "me"}
    upload = h.fake.attachment("mara.png", png_card({"chara": card}), "image/png")
    record = await h.fake.slash(h.general, h.admin, "persona", "import", card=upload, name="mara")
    await h.fake.wait_for(lambda: record.followups, 10, "the import")
    exported = await done(await h.fake.slash(h.general, h.admin, "persona", "export", persona="mara"))
    (_, data), = exported.files
    back = text_payloads(data)["chara"]
    back["data"]["extensions"].pop("personabot")
    assert back == card


async def test_an_unusable_avatar_file_falls_back_to_the_shared_webhook(harness):
    h = harness
    await import_mara(h)
    spec = h.bot.personas["captain-mara"]
    (spec.folder / "avatar.png").write_bytes(b"not an image at all")
    chat = await done(await h.fake.slash(h.hooks, h.alice, "chat", persona="captain-mara"))
    assert "waiting for you" in chat.text
    thread = int(h.fake.threads()[-1]["id"])
    greeting = (await h.fake.wait_for(lambda: h.fake.bot_messages(thread), 5, "the greeting"))[0]
    assert greeting["author"]["username"] == "Captain Mara"
    assert h.fake.webhooks[int(greeting["webhook_id"])]["name"] == "personabot"
    assert not h.fake.webhook_avatars


async def test_chat_without_webhooks_greets_as_the_bot_and_splits_long_greetings(harness):
    h = harness
    long_greeting = "Evening, {{user}}. " + "The sea is wide. " * 150
    upload = h.fake.attachment("m.json", json.dumps(v2_card(first_mes=long_greeting)).encode(), "application/json")
    record = await h.fake.slash(h.general, h.admin, "persona", "import", card=upload, name="mara")
    await h.fake.wait_for(lambda: record.followups, 10, "the import")
    await done(await h.fake.slash(h.general, h.bob, "chat", persona="mara"))
    thread = int(h.fake.threads()[-1]["id"])
    parts = await h.fake.wait_for(lambda: len(h.fake.bot_messages(thread)) >= 2 and h.fake.bot_messages(thread), 5, "2 parts")
    assert all("webhook_id" not in m and len(m["content"]) <= 2000 for m in parts)
    assert parts[0]["content"].startswith("Evening, bob. The sea is wide.")


@pytest.mark.slow
async def test_imported_card_speaks_with_smollm2_in_discord(harness, real_models_dir):
    """The whole journey on the real embedded model: a card attached in Discord, a /chat thread,
    the greeting, then an in-character answer streamed into the thread."""
    from bot.persona.spec import SamplingSpec
    from bot.settings import load_settings

    h = harness
    real = load_settings(data_dir=h.settings.core.data_dir, models_dir_override=real_models_dir, local_device="cpu")
    h.settings.core = real.core           # the pool builds the local backend from these settings
    upload = h.fake.attachment("mara.png", png_card({"chara": v2_card()}), "image/png")
    record = await h.fake.slash(h.general, h.admin, "persona", "import", card=upload, name="mara")
    await h.fake.wait_for(lambda: record.followups, 10, "the import")
    spec = h.bot.personas["mara"]
    h.bot.personas["mara"] = spec.model_copy(update={"sampling": SamplingSpec(max_tokens=60, temperature=0.0)})
    await done(await h.fake.slash(h.hooks, h.alice, "chat", persona="mara"))
    thread = int(h.fake.threads()[-1]["id"])
    await h.fake.wait_for(lambda: h.fake.bot_messages(thread), 5, "the greeting")
    await h.say(thread, h.alice, "Good evening! Who are you, and what is this place?")
    await h.fake.wait_for(lambda: len(h.fake.bot_messages(thread)) >= 2, 300, "the model's reply")
    await asyncio.wait_for(h.bot.conversations.drain(), 300)
    reply = h.fake.bot_messages(thread)[-1]
    text = reply["content"]
    assert reply["author"]["username"] == "Captain Mara" and len(text.split()) >= 3, text
    assert "User:" not in text and "<|im" not in text and "{{" not in text
    assert text not in (spec.error_reply, spec.empty_reply), "the model answered (not the apology)"


async def test_delete_asks_then_removes_the_persona_and_stops_serving_it(harness):
    h = harness
    await import_mara(h, name="mara")
    await done(await h.fake.slash(h.general, h.admin, "persona", "set", persona="mara"))
    assert h.bot.directory.bindings[str(h.general)].persona == "mara"
    folder = h.settings.core.member_personas_dir / "mara"

    refused = await done(await h.fake.slash(h.general, h.alice, "persona", "delete", persona="mara"))
    assert "Manage Server" in refused.text and folder.is_dir()
    shipped = await done(await h.fake.slash(h.general, h.admin, "persona", "delete", persona="tim"))
    assert "ships with the bot" in shipped.text and "tim" in h.bot.personas

    ask = await done(await h.fake.slash(h.general, h.admin, "persona", "delete", persona="mara"))
    assert "Continue?" in ask.text and len(ask.custom_ids()) == 2 and folder.is_dir()
    other = await done(await h.fake.click(ask, h.alice, ask.custom_ids()[0]))
    assert "Only the admin who asked" in other.text and folder.is_dir()
    deleted = await h.fake.click(ask, h.admin, ask.custom_ids()[0])
    await h.fake.wait_for(lambda: deleted.message and "Deleted `mara`" in (deleted.message.get("content") or ""), 10,
                          "the deletion report")
    assert not deleted.custom_ids(), "the buttons go with the answer"
    assert "mara" not in h.bot.personas and not folder.exists()
    assert str(h.general) not in h.bot.directory.bindings
    async with h.db.execute("SELECT COUNT(*) FROM channel_bindings WHERE persona = 'mara'") as cur:
        assert (await cur.fetchone())[0] == 0
