"""The twins store: ownership, shares only where admins allowed twins, and the privacy paths
(a member's twins are in their export; forgetting them deletes every row of their twins)."""
import pytest

from bot.store import channels, privacy, twins
from trainer.importers.base import ParseResult, RawMessage
from trainer.sources import save_source


async def _twin_with_source(db, name="sam", owner="u1"):
    await twins.add_twin(db, name, "Sam", ["42"], owner)
    result = ParseResult(messages=[RawMessage("c", 0, None, "42", "Sam", "my own words QUOKKA")], owner_ids={"42"})
    await save_source(db, persona=name, kind="twitter", label="t.zip", content_hash=f"h-{name}", result=result)


async def test_owner_check_and_shares_need_the_admins_flag(db):
    await _twin_with_source(db)
    t = await twins.get_twin(db, "sam")
    assert twins.is_owner(t, "u1") and not twins.is_owner(t, "u2") and not twins.is_owner(t, None)
    terminal = await twins.add_twin(db, "cli", "Cli")
    assert not twins.is_owner(terminal, "u1")          # nobody controls a terminal-made twin from Discord
    with pytest.raises(twins.TwinAccessError):
        await twins.share(db, "sam", "100")
    await channels.bind_channel(db, "100", "tim", guild_id="g")
    assert await twins.allow_twins(db, "100", True) and not await twins.allow_twins(db, "999", True)
    await twins.share(db, "sam", "100", "g")
    assert await twins.shared_in(db, "100") == ["sam"]
    await twins.allow_twins(db, "100", False)          # the admins withdraw: shares there end
    assert await twins.shared_in(db, "100") == []


async def test_export_and_forget_cover_the_members_twins(db):
    await _twin_with_source(db, "sam", "u1")
    await _twin_with_source(db, "kim", "u2")
    exported = await privacy.export_user(db, "u1")
    assert [t["persona"] for t in exported["twins"]["twins"]] == ["sam"]
    counts = await privacy.forget_user(db, "u1", hooks=[])
    assert counts["twins"] == 2                         # the twin and its source (its messages cascade)
    assert await twins.get_twin(db, "sam") is None and await twins.get_twin(db, "kim") is not None
    async with db.execute("SELECT COUNT(*) FROM sources WHERE persona = 'sam'") as cur:
        assert (await cur.fetchone())[0] == 0
    async with db.execute("SELECT COUNT(*) FROM source_messages") as cur:
        assert (await cur.fetchone())[0] == 1           # kim's only
