"""Curated logs into `dataset build`: approved and corrected items train (multi-turn, corrections win);
pending, rejected, opted-out, forgotten and other guilds' items do not; the report counts them."""
import json

import pytest

from bot.persona import load_persona
from bot.store import channels, consent, curation, exchanges
from bot.store.privacy import forget_user
from tests.conftest import REPO
from trainer.dataset.build import BuildError, BuildOptions, build_dataset
from trainer.dataset.versions import list_versions

OPTIONS = BuildOptions(val_fraction=0.01, dedup=False)


@pytest.fixture
def tim():
    return load_persona(REPO / "personas" / "tim")


async def item(db, user, text, reply, *, key, guild="g1", status=None, correction=None):
    logged = await exchanges.log_exchange(db, persona="tim", conversation_key=key, user_id=user, user_content=text,
                                          reply_content=reply, guild_id=guild)
    if status:
        assert await curation.curate(db, logged.reply_message_id, status=status, curator="cli:test", correction=correction)
    return logged.reply_message_id


def examples(result) -> list[dict]:
    out = []
    for name in ("train.jsonl", "val.jsonl"):
        out += [json.loads(line) for line in (result.folder / name).read_text().splitlines()]
    return out


async def test_build_takes_approved_and_corrected_only(db, settings, tim):
    for user in ("u1", "u2", "u3", "u4"):
        await consent.set_consent(db, user, True, "1", display_name=f"Member {user}")
    await channels.bind_channel(db, "100", "tim", guild_id="g1")
    # One conversation, two approved exchanges: one multi-turn example.
    await item(db, "u1", "how do I add fractions with unlike denominators", "APPROVED-ONE find a common denominator first",
               key="discord:100", status="approved")
    await item(db, "u1", "and then what do I do with the numerators", "ORIGINAL-BAD reply", key="discord:100",
               status="corrected", correction="CORRECTED-GOOD add the numerators and keep the denominator")
    await item(db, "u2", "what is a prime number exactly", "PENDING-REPLY about primes", key="discord:101")
    await item(db, "u2", "is zero even or odd please", "REJECTED-REPLY about zero", key="discord:102", status="rejected")
    await item(db, "u3", "can you explain long division", "OPTED-OUT-REPLY division steps", key="discord:103", status="approved")
    await item(db, "u4", "why is the sky blue today", "OTHER-GUILD-REPLY scattering", key="discord:900", guild="g2",
               status="approved")
    await consent.set_consent(db, "u3", False, "1")

    result = await build_dataset(db, persona=tim, data_dir=settings.core.data_dir, options=OPTIONS)
    text = json.dumps(examples(result))
    assert "APPROVED-ONE" in text and "CORRECTED-GOOD" in text
    for absent in ("ORIGINAL-BAD", "PENDING-REPLY", "REJECTED-REPLY", "OPTED-OUT-REPLY", "OTHER-GUILD-REPLY"):
        assert absent not in text, absent
    multi = [ex for ex in examples(result) if "APPROVED-ONE" in json.dumps(ex)]
    roles = [m["role"] for m in multi[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert multi[0]["messages"][-1]["content"].startswith("CORRECTED-GOOD")
    assert result.manifest["curated"]["by_status"] == {"pending": 1, "approved": 1, "rejected": 1, "corrected": 1,
                                                        "out_of_scope": 1, "not_opted_in": 1}
    assert result.manifest["curated"]["scope"]["guilds"] == ["g1"]
    report = (result.folder / "report.md").read_text()
    assert "1 approved and 1 corrected" in report and "1 from other guilds" in report


async def test_forgotten_members_approved_examples_leave_the_next_dataset(db, settings, tim):
    for user in ("u1", "u2"):
        await consent.set_consent(db, user, True, "1")
    await item(db, "u1", "what is the area of a circle", "STAYS pi r squared", key="discord:1", status="approved")
    await item(db, "u2", "what is the perimeter of a square", "FORGOTTEN four times the side", key="discord:2",
               status="approved")
    first = await build_dataset(db, persona=tim, data_dir=settings.core.data_dir, options=OPTIONS)
    assert "FORGOTTEN" in json.dumps(examples(first))
    await forget_user(db, "u2")            # the default hooks: the trainer's stale + taint propagation
    assert {v["version"]: v["status"] for v in await list_versions(db, "tim")} == {1: "stale"}
    assert [i.reply for i in await curation.list_items(db, curation.QueueFilter(status=None))] == ["STAYS pi r squared"]
    second = await build_dataset(db, persona=tim, data_dir=settings.core.data_dir, options=OPTIONS)
    text = json.dumps(examples(second))
    assert "STAYS" in text and "FORGOTTEN" not in text


async def test_shared_persona_trains_on_every_guild(db, settings, tim):
    await consent.set_consent(db, "u1", True, "1")
    await item(db, "u1", "first guild question here", "GUILD-ONE answer", key="discord:1", guild="g1", status="approved")
    await item(db, "u1", "second guild question here", "GUILD-TWO answer", key="discord:2", guild="g2", status="approved")
    # Replies from two guilds and no binding: ambiguous, so neither guild's trains an unshared persona,
    # and the error says how to fix it.
    with pytest.raises(BuildError, match=r"replies from 2 guilds and no channel binding.*shared = true"):
        await build_dataset(db, persona=tim, data_dir=settings.core.data_dir, options=OPTIONS)
    await channels.bind_channel(db, "2", "tim", guild_id="g2")
    bound = await build_dataset(db, persona=tim, data_dir=settings.core.data_dir, options=OPTIONS)
    assert "GUILD-TWO" in json.dumps(examples(bound)) and "GUILD-ONE" not in json.dumps(examples(bound))
    shared = tim.model_copy(update={"curation": tim.curation.model_copy(update={"shared": True})})
    result = await build_dataset(db, persona=shared, data_dir=settings.core.data_dir, options=OPTIONS)
    text = json.dumps(examples(result))
    assert "GUILD-ONE" in text and "GUILD-TWO" in text
