"""Forget propagation: stale datasets, tainted models, and the audit of a member's data."""
import asyncio
import json
import re

from bot.store import registry
from bot.store.consent import set_consent
from bot.store.curation import curate
from bot.store.exchanges import log_exchange
from bot.store.privacy import forget_user
from trainer.dataset.versions import list_versions, record_version
from trainer.forget import audit_user, on_forget


async def member_dataset(db, persona, number, members):
    return await record_version(db, persona=persona, version=number, path=f"/data/datasets/{persona}/v{number}",
                                manifest_hash="h", source_ids=[], member_ids=members)


async def model(db, persona, dataset, *, active=False):
    v = await registry.create_version(db, persona=persona, backend="local", base_model="b", dataset_version=dataset)
    await registry.update_version(db, v.name, status="candidate")
    if active:
        await registry.set_active(db, v.name)
    return v.name


async def test_forget_marks_datasets_stale_and_models_tainted(db):
    await member_dataset(db, "tim", 1, ["u1", "u2"])
    await member_dataset(db, "tim", 2, ["u1"])
    await member_dataset(db, "eve", 1, ["u2"])
    t1, t2 = await model(db, "tim", "v1"), await model(db, "tim", "v2", active=True)
    e1 = await model(db, "eve", "v1", active=True)
    audit = await audit_user(db, "u2")
    assert [(d.persona, d.version) for d in audit.datasets] == [("eve", "v1"), ("tim", "v1")]
    assert sorted(m["name"] for m in audit.models) == [e1, t1] and audit.active_models == [e1]

    await forget_user(db, "u2", hooks=[on_forget])
    status = {(d["persona"], d["version"]): d["status"] for d in await list_versions(db)}
    assert status == {("tim", 1): "stale", ("tim", 2): "ok", ("eve", 1): "stale"}
    tainted = {v.name: v.tainted for v in await registry.list_versions(db)}
    assert tainted == {t1: True, t2: False, e1: True}
    reason = (await registry.get_version(db, e1)).tainted_reason
    assert not re.search(r"\bu2\b", reason) and "trained on dataset v1 of eve" in reason
    # Forgetting again changes nothing and does not fail.
    await forget_user(db, "u2", hooks=[on_forget])
    assert [e["event"] for e in await registry.events(db, "eve")].count("tainted") == 1


async def test_forget_drops_the_pairs_of_reviews_of_models_trained_on_the_members_data(db):
    from bot.store import reviews

    await member_dataset(db, "tim", 1, ["u1"])
    await member_dataset(db, "tim", 2, ["u2"])
    t1, t2 = await model(db, "tim", "v1", active=True), await model(db, "tim", "v2")
    pair = {"context": "val-1", "messages": [{"role": "user", "content": "my cat Biscuit is ill"}],
            "candidate": "so sorry", "baseline": "ok"}
    theirs = await reviews.open_review(db, persona="tim", candidate=t2, baseline=t1, pairs=[pair])
    await reviews.vote(db, theirs.id, 0, "admin", "1")
    await forget_user(db, "u2", hooks=[on_forget])
    after = await reviews.get_review(db, theirs.id)
    assert after.pairs == [] and after.status == "superseded"
    assert (await reviews.tally(db, theirs.id)).votes, "the votes are about model replies and stay"
    async with db.execute("SELECT COUNT(*) FROM model_reviews WHERE pairs LIKE '%Biscuit%'") as cur:
        assert (await cur.fetchone())[0] == 0
    # A review whose models never saw the member's data keeps its pairs.
    other = await reviews.open_review(db, persona="tim", candidate=t1, baseline="base model", pairs=[pair])
    await forget_user(db, "u2", hooks=[on_forget])
    assert len((await reviews.get_review(db, other.id)).pairs) == 1


async def test_member_without_datasets_is_a_no_op(db):
    await model(db, "tim", "v1", active=True)
    await forget_user(db, "nobody", hooks=[on_forget])
    assert not (await registry.active_version(db, "tim")).tainted


def test_audit_cli(settings):
    from typer.testing import CliRunner

    from bot.cli.main import app
    from bot.store import open_db

    async def setup():
        async with open_db(settings.core.db_path) as db:
            await set_consent(db, "u7", True, "1")
            logged = await log_exchange(db, persona="tim", conversation_key="k", user_id="u7", user_content="hi",
                                        reply_content="Hello!")
            await curate(db, logged.reply_message_id, status="approved", curator="admin")
            await member_dataset(db, "tim", 1, ["u7"])
            return await model(db, "tim", "v1", active=True)

    name = asyncio.run(setup())
    r = CliRunner().invoke(app, ["privacy", "audit", "--user", "u7", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["active_models"] == [name] and data["stored_messages"] == 2 and data["datasets"][0]["version"] == "v1"
    r = CliRunner().invoke(app, ["privacy", "audit", "--user", "u7"])
    assert f"model {name} (active) trained on v1" in r.stdout and "Serving now" in r.stdout


async def test_forget_removes_the_members_words_from_dataset_files(db, tmp_path):
    keep, purge = tmp_path / "tim" / "v1", tmp_path / "tim" / "v2"
    for folder in (keep, purge):
        (folder / "hf").mkdir(parents=True)
        for name in ("train.jsonl", "val.jsonl"):
            (folder / name).write_text('{"messages": [{"role": "user", "content": "my secret plan"}]}\n')
        (folder / "manifest.json").write_text("{}")
    await record_version(db, persona="tim", version=1, path=str(keep), manifest_hash="a", source_ids=[], member_ids=["u1"])
    await record_version(db, persona="tim", version=2, path=str(purge), manifest_hash="b", source_ids=[], member_ids=["u2"])

    await forget_user(db, "u2")                      # default hooks: the trainer's propagation runs
    assert sorted(p.name for p in purge.iterdir()) == ["PURGED.txt", "manifest.json"]
    assert "my secret plan" not in "".join(p.read_text() for p in purge.rglob("*") if p.is_file())
    assert (keep / "train.jsonl").is_file() and (keep / "hf").is_dir()   # other members' datasets untouched
