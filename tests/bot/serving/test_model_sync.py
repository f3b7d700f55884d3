"""Model sync: the registry's active version reaches serving without a restart or a lost reply."""
import asyncio

import pytest

from bot.backends.pool import BackendPool
from bot.engine import ChatEngine, Turn
from bot.persona import ModelSpec, load_personas
from bot.serving import ModelSync
from bot.store import registry
from tests.bot.serving.fakes import AdapterBackend, RecordingAdmin, ScriptedFactory, make_adapter


@pytest.fixture
def personas(settings):
    return load_personas(settings.core.resolved_personas_dir())


async def add_version(db, settings, persona="tim", *, backend="local", remote=None, make=True):
    v = await registry.create_version(db, persona=persona, backend=backend, base_model="base", dataset_version="d1")
    path = settings.core.data_dir / "adapters" / persona / v.name
    if make and backend != "openai":
        make_adapter(path)
    await registry.update_version(db, v.name, status="candidate", adapter_path=None if backend == "openai" else str(path),
                                  remote_model=remote)
    return v.name


def user(text):
    return Turn("u1", "Ana", text)


async def test_no_versions_means_spec_models(db, settings, personas):
    factory = ScriptedFactory()
    pool = BackendPool(settings, factories={"local": factory})
    sync = ModelSync(db, pool, personas)
    results = await sync.start()
    assert {r.persona: r.version for r in results} == {"tim": None, "eve": None, "twin": None}
    assert pool.model_spec(personas["tim"]) == personas["tim"].model
    assert factory.built == []  # nothing loaded until a persona is asked for


async def test_local_hot_swap_mid_conversation_loses_nothing(db, settings, personas):
    factory = ScriptedFactory()
    pool = BackendPool(settings, factories={"local": factory})
    engine = ChatEngine(pool.for_persona)
    tim = personas["tim"]
    await registry.set_active(db, await add_version(db, settings))
    sync = ModelSync(db, pool, personas)
    await sync.start()

    history = [user("What is a fraction?")]
    first = engine.respond(tim, history)
    assert await first.text() == "Reply from tim-v1. Anything else?"
    assert first.reply.model == "base+tim-v1"
    history.append(Turn("bot", "TIM", first.reply.text, from_persona=True))

    # A reply is streaming when the trainer promotes tim-v2 in another process.
    backend = pool.for_persona(tim)
    backend.hold()
    history.append(user("And a decimal?"))
    second = engine.respond(tim, history)
    chunks = []

    async def consume():
        async for chunk in second:
            chunks.append(chunk)

    streaming = asyncio.create_task(consume())
    await backend.held.wait()
    await registry.set_active(db, await add_version(db, settings))
    swapping = asyncio.create_task(sync.sync())
    await asyncio.sleep(0.05)
    assert not swapping.done()          # the switch waits for the reply in progress
    backend.release()
    await streaming
    results = await swapping
    assert "".join(chunks) == second.reply.text == "Reply from tim-v1. Anything else?"
    assert [r.version for r in results] == ["tim-v2"]

    history.append(Turn("bot", "TIM", second.reply.text, from_persona=True))
    history.append(user("Thanks!"))
    third = engine.respond(tim, history)
    assert await third.text() == "Reply from tim-v2. Anything else?"
    assert third.reply.model == "base+tim-v2"
    # Loaded beside the old one, switched, then the old one unloaded; one model load in all.
    assert backend.log == ["load tim-v1", "set tim-v1", "load tim-v2", "set tim-v2", "unload tim-v1"]
    assert len(factory.built) == 1 and pool.model_spec(tim).adapter.endswith("tim-v2")


async def test_rollback_and_deactivate_route_back(db, settings, personas):
    factory = ScriptedFactory()
    pool = BackendPool(settings, factories={"local": factory})
    sync = ModelSync(db, pool, personas)
    v1, v2 = await add_version(db, settings), await add_version(db, settings)
    await registry.set_active(db, v1)
    await sync.start()
    await registry.set_active(db, v2)
    await sync.sync()
    await registry.set_active(db, v1, event="rolled_back")
    await sync.sync()
    backend = pool.for_persona(personas["tim"])
    assert backend.model_name == "base+tim-v1"
    await registry.deactivate(db, "tim")
    assert [r.version for r in await sync.sync()] == [None]
    assert backend.model_name == "base" and backend.adapters == {}
    assert await sync.sync() == []  # nothing changed since


async def test_vllm_adapters_reregistered_at_start_and_switched(db, settings, personas):
    tim = personas["tim"].model_copy(update={"model": ModelSpec(backend="vllm", model="base")})
    factory = ScriptedFactory()
    pool = BackendPool(settings, factories={"vllm": factory})
    admin = RecordingAdmin()
    sync = ModelSync(db, pool, {"tim": tim}, admin_factory=lambda url, key: admin)
    v1 = await add_version(db, settings)
    await registry.set_active(db, v1)
    await sync.start()
    assert admin.calls == [("load", "tim-v1", admin.loaded["tim-v1"], True)]
    assert pool.model_spec(tim).adapter == "tim-v1"
    assert pool.for_persona(tim).model_name == "tim-v1"

    # vLLM refuses the new adapter: routing stays on tim-v1, the error is reported, the next sync retries.
    from bot.backends.base import BackendError

    v2 = await add_version(db, settings)
    await registry.set_active(db, v2)
    admin.fail_next = BackendError("vLLM refused: rank 32 above --max-lora-rank 16")
    [result] = await sync.sync()
    assert result.error and "max-lora-rank" in result.error and result.version == "tim-v1"
    assert pool.model_spec(tim).adapter == "tim-v1" and "max-lora-rank" in sync.state()["tim"]["error"]
    [result] = await sync.sync()
    assert result.error is None and pool.for_persona(tim).model_name == "tim-v2"
    assert sync.state()["tim"] == {"version": "tim-v2", "error": None}
    await sync.aclose()
    assert admin.closed


async def test_openai_version_switches_model_id(db, settings, personas):
    eve = personas["eve"].model_copy(update={"model": ModelSpec(backend="openai", model="gpt-4o-mini")})
    factory = ScriptedFactory()
    pool = BackendPool(settings, factories={"openai": factory})
    sync = ModelSync(db, pool, {"eve": eve})
    name = await add_version(db, settings, "eve", backend="openai", remote="ft:gpt-4o-mini:org:eve-v1:abc")
    await registry.set_active(db, name)
    await sync.start()
    assert pool.for_persona(eve).model_name == "ft:gpt-4o-mini:org:eve-v1:abc"


async def test_lora_version_on_openai_persona_is_refused(db, settings, personas):
    eve = personas["eve"].model_copy(update={"model": ModelSpec(backend="openai", model="gpt-4o-mini")})
    pool = BackendPool(settings, factories={"openai": ScriptedFactory()})
    sync = ModelSync(db, pool, {"eve": eve})
    await registry.set_active(db, await add_version(db, settings, "eve"))
    [result] = await sync.start()
    assert result.version is None and "cannot load adapters" in result.error
    assert pool.model_spec(eve).model == "gpt-4o-mini"


async def test_missing_adapter_folder_keeps_old_version(db, settings, personas):
    pool = BackendPool(settings, factories={"local": ScriptedFactory()})
    sync = ModelSync(db, pool, personas)
    await registry.set_active(db, await add_version(db, settings))
    await sync.start()
    await registry.set_active(db, await add_version(db, settings, make=False))
    [result] = await sync.sync()
    assert result.version == "tim-v1" and "adapter_config.json" in result.error
    assert pool.for_persona(personas["tim"]).model_name == "base+tim-v1"


async def test_run_loop_follows_notify(db, settings, personas):
    pool = BackendPool(settings, factories={"local": ScriptedFactory()})
    sync = ModelSync(db, pool, personas, interval_s=60)
    await sync.start()
    loop = asyncio.create_task(sync.run())
    try:
        await registry.set_active(db, await add_version(db, settings))
        sync.notify()
        for _ in range(100):
            if sync.state()["tim"]["version"] == "tim-v1":
                break
            await asyncio.sleep(0.01)
        assert sync.state()["tim"]["version"] == "tim-v1"
    finally:
        loop.cancel()
