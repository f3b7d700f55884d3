"""Model registry: immutable names, one active version, events."""
import pytest

from bot.store import registry


async def test_versions_are_numbered_and_one_is_active(db):
    v1 = await registry.create_version(db, persona="tim", backend="vllm", base_model="base", dataset_version="d1")
    v2 = await registry.create_version(db, persona="tim", backend="vllm", base_model="base", dataset_version="d2")
    other = await registry.create_version(db, persona="eve", backend="local", base_model="base", dataset_version="e1")
    assert (v1.name, v2.name, other.name) == ("tim-v1", "tim-v2", "eve-v1")
    await registry.set_active(db, "tim-v1")
    await registry.set_active(db, "tim-v2")
    statuses = {v.name: v.status for v in await registry.list_versions(db, "tim")}
    assert statuses == {"tim-v1": "retired", "tim-v2": "active"}
    assert (await registry.active_version(db, "tim")).name == "tim-v2"
    assert set(await registry.active_versions(db)) == {"tim"}
    await registry.mark_tainted(db, "tim-v2", "member forgotten")
    assert (await registry.get_version(db, "tim-v2")).tainted
    assert [e["event"] for e in await registry.events(db, "tim")] == ["created", "created", "promoted", "promoted", "tainted"]
    with pytest.raises(KeyError):
        await registry.set_active(db, "tim-v9")


async def test_served_model_name(db):
    v = await registry.create_version(db, persona="tim", backend="openai", base_model="gpt-4o-mini", dataset_version=None)
    assert v.served_model == "tim-v1"
    await registry.update_version(db, "tim-v1", remote_model="ft:gpt-4o-mini:org:tim-v1:abc", status="candidate")
    v = await registry.get_version(db, "tim-v1")
    assert v.served_model == "ft:gpt-4o-mini:org:tim-v1:abc" and v.status == "candidate"
