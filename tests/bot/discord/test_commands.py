"""Slash commands end to end: registration, /persona permissions, /admin status."""
import asyncio


async def test_commands_are_registered_with_descriptions(harness):
    cmds = harness.fake.commands
    assert {"persona", "chat", "reset", "consent", "privacy", "admin"} <= set(cmds)
    assert all(c.get("guild_id") == str(harness.fake.guild_id) for c in cmds.values()), "synced to the dev guild"
    subs = {o["name"]: o for o in cmds["persona"]["options"]}
    assert set(subs) == {"list", "info", "set", "unset", "import", "export", "delete"}
    assert subs["set"]["description"].startswith("Make a persona speak")
    options = {o["name"]: o for o in subs["set"]["options"]}
    assert options["persona"]["description"] and options["mode"]["description"]
    assert [c["value"] for c in options["mode"]["choices"]] == ["mention", "all"]
    assert int(cmds["admin"]["default_member_permissions"]) == 1 << 5     # Manage Server


async def test_persona_set_needs_manage_channels(harness):
    h = harness
    refused = await h.fake.slash(h.general, h.alice, "persona", "set", persona="eve")
    await asyncio.wait_for(refused.done.wait(), 5)
    assert "Manage Channels" in refused.text
    assert refused.responses[0]["data"]["flags"] & 64, "the refusal is ephemeral"
    assert str(h.general) not in h.bot.directory.bindings

    accepted = await h.fake.slash(h.general, h.admin, "persona", "set", persona="eve", mode="all")
    await asyncio.wait_for(accepted.done.wait(), 5)
    assert "EVE now speaks here" in accepted.text
    assert h.bot.directory.bindings[str(h.general)].persona == "eve"
    async with h.db.execute("SELECT persona, mode, set_by FROM channel_bindings WHERE channel_id = ?", (str(h.general),)) as cur:
        assert tuple(await cur.fetchone()) == ("eve", "all", str(h.admin))

    info = await h.fake.slash(h.general, h.alice, "persona", "info")
    await asyncio.wait_for(info.done.wait(), 5)
    assert "EVE" in info.text and "answers every message" in info.text

    listing = await h.fake.slash(h.general, h.alice, "persona", "list")
    await asyncio.wait_for(listing.done.wait(), 5)
    assert "TIM" in listing.text and "EVE" in listing.text and "← here" in listing.text

    refused = await h.fake.slash(h.general, h.bob, "persona", "unset")
    await asyncio.wait_for(refused.done.wait(), 5)
    assert str(h.general) in h.bot.directory.bindings
    removed = await h.fake.slash(h.general, h.admin, "persona", "unset")
    await asyncio.wait_for(removed.done.wait(), 5)
    assert str(h.general) not in h.bot.directory.bindings


async def test_unknown_persona_is_refused(harness):
    h = harness
    record = await h.fake.slash(h.general, h.admin, "persona", "set", persona="nobody")
    await asyncio.wait_for(record.done.wait(), 5)
    assert "no persona called `nobody`" in record.text


async def test_admin_status(harness):
    h = harness
    refused = await h.fake.slash(h.general, h.alice, "admin", "status")
    await asyncio.wait_for(refused.done.wait(), 5)
    assert "Manage Server" in refused.text

    record = await h.fake.slash(h.general, h.admin, "admin", "status")
    await h.fake.wait_for(lambda: record.followups, what="the status followup")
    text = record.text
    for persona in ("tim", "eve", "twin"):
        assert f"(`{persona}`): model `scripted`: ✅ ok" in text
    assert "generating 0/8, waiting 0/256" in text
