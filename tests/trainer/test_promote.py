"""Promotion and rollback, against loopback fakes of vLLM's and OpenAI's documented APIs.

The bot side is real too: `ModelSync` routes a real `BackendPool` whose `OpenAICompatBackend`
talks to the same fake server, so "the next reply comes from the new version" is checked on the wire.
"""
import pytest

from bot.backends.pool import BackendPool
from bot.engine import ChatEngine, Turn
from bot.persona import ModelSpec, load_personas
from bot.serving import ModelSync
from bot.store import registry
from tests.bot.serving.fakes import make_adapter
from tests.support.openai_server import BASE_MODEL, TEST_API_KEY, FakeOpenAIServer
from trainer.promote import PromotionError, promote, rollback, unload_after_grace


@pytest.fixture
def personas(settings):
    return load_personas(settings.core.resolved_personas_dir())


@pytest.fixture
async def vllm():
    async with FakeOpenAIServer() as server:
        server.responder = lambda req: f"Answer from {req.json['model']}."
        yield server


async def candidate(db, settings, persona="tim", *, passed=True, rank=8, backend="local", remote=None, tainted=False):
    v = await registry.create_version(db, persona=persona, backend=backend, base_model=BASE_MODEL, dataset_version="d1")
    path = None
    if backend != "openai":
        path = str(make_adapter(settings.core.data_dir / "adapters" / persona / v.name, rank=rank))
    await registry.update_version(db, v.name, status="candidate", adapter_path=path, remote_model=remote,
                                  metrics={"eval": {"passed": passed}})
    if tainted:
        await registry.mark_tainted(db, v.name, "member 42 forgotten")
    return v.name


def on_vllm(persona, server):
    return persona.model_copy(update={"model": ModelSpec(backend="vllm", model=BASE_MODEL, base_url=server.base_url)})


async def reply(engine, persona):
    stream = engine.respond(persona, [Turn("u1", "Ana", "Hello?")])
    return await stream.text(), stream.reply.model


async def test_refuses_ungated_tainted_and_failed(db, settings, personas):
    tim = personas["tim"]
    with pytest.raises(PromotionError, match="no candidate that passed the gate"):
        await promote(db, settings, tim)
    ungated = await candidate(db, settings, passed=False)
    tainted = await candidate(db, settings, tainted=True)
    with pytest.raises(PromotionError, match="has not passed the evaluation gate"):
        await promote(db, settings, tim, ungated)
    with pytest.raises(PromotionError, match="is tainted"):
        await promote(db, settings, tim, tainted)
    with pytest.raises(PromotionError, match="no candidate that passed the gate"):
        await promote(db, settings, tim)  # the tainted one is never picked by default
    failed = (await registry.create_version(db, persona="tim", backend="local", base_model="b", dataset_version="d")).name
    await registry.update_version(db, failed, status="failed", reason="training failed: CUDA out of memory")
    with pytest.raises(PromotionError, match="training failed: CUDA out of memory"):
        await promote(db, settings, tim, failed, force=True)
    with pytest.raises(PromotionError, match=r"no version 'eve-v1' of tim \(known: tim-v1, tim-v2, tim-v3\)"):
        await promote(db, settings, tim, "eve-v1")
    assert await registry.active_version(db, "tim") is None

    # --force serves a version past the gate (recorded in the audit trail).
    result = await promote(db, settings, tim, "1", force=True)
    assert result.version == ungated
    assert (await registry.events(db, "tim"))[-1]["detail"] == "forced past the gate"


async def test_local_promotion_needs_the_adapter_folder(db, settings, personas):
    name = await candidate(db, settings)
    import shutil

    shutil.rmtree(settings.core.data_dir / "adapters" / "tim" / name)
    with pytest.raises(PromotionError, match="adapter_config.json"):
        await promote(db, settings, personas["tim"])
    assert await registry.active_version(db, "tim") is None


async def test_vllm_promotion_hot_swaps_and_unloads_after_grace(db, settings, personas, vllm):
    tim = on_vllm(personas["tim"], vllm)
    pool = BackendPool(settings)
    sync = ModelSync(db, pool, {"tim": tim})
    engine = ChatEngine(pool.for_persona)
    try:
        await sync.start()
        assert await reply(engine, tim) == (f"Answer from {BASE_MODEL}.", BASE_MODEL)

        v1 = await candidate(db, settings)
        result = await promote(db, settings, tim, on_switched=lambda p, v: sync.sync())
        assert (result.version, result.previous, result.unload_pending) == (v1, None, None)
        assert list(vllm.adapters) == [v1]
        assert await reply(engine, tim) == (f"Answer from {v1}.", v1)

        v2 = await candidate(db, settings)
        result = await promote(db, settings, tim)
        assert result.unload_pending == v1 and "unloaded from vLLM after a grace period" in result.summary()
        assert list(vllm.adapters) == [v1, v2]      # both loaded: replies still streaming from v1 finish
        await sync.sync()                            # the bot's next poll
        assert await reply(engine, tim) == (f"Answer from {v2}.", v2)
        assert await unload_after_grace(settings, tim, v1, 0.01, db=db)
        assert list(vllm.adapters) == [v2]
        load = vllm.requests_to("/v1/load_lora_adapter")[-1].json
        assert load == {"lora_name": v2, "lora_path": str(settings.core.data_dir / "adapters" / "tim" / v2)}

        # vLLM restarts and forgets runtime adapters; the bot's start-up registers the active one again.
        vllm.adapters.clear()
        restarted = ModelSync(db, BackendPool(settings), {"tim": tim})
        await restarted.start()
        assert list(vllm.adapters) == [v2]
        await restarted.aclose()

        # Rollback: v1 is loaded again under its own name and routing goes back.
        result = await rollback(db, settings, tim)
        assert (result.version, result.previous, result.unload_pending) == (v1, v2, v2)
        await sync.sync()
        assert await reply(engine, tim) == (f"Answer from {v1}.", v1)
        assert [e["event"] for e in await registry.events(db, "tim")][-3:] == ["promoted", "unloaded", "rolled_back"]
    finally:
        await sync.aclose()
        await pool.aclose()


async def test_vllm_refusals_change_nothing(db, settings, personas):
    async with FakeOpenAIServer(runtime_lora=False) as server:
        tim = on_vllm(personas["tim"], server)
        await candidate(db, settings)
        with pytest.raises(PromotionError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
            await promote(db, settings, tim)
        assert await registry.active_version(db, "tim") is None
    async with FakeOpenAIServer(max_lora_rank=16) as server:
        tim = on_vllm(personas["tim"], server)
        big = await candidate(db, settings, rank=32)
        with pytest.raises(PromotionError, match="max-lora-rank"):
            await promote(db, settings, tim, big)
        assert await registry.active_version(db, "tim") is None and server.adapters == {}
    # Unreachable server.
    tim = personas["tim"].model_copy(update={"model": ModelSpec(backend="vllm", model=BASE_MODEL, base_url="http://127.0.0.1:9/v1")})
    with pytest.raises(PromotionError, match="cannot reach vLLM"):
        await promote(db, settings, tim, big)


async def test_openai_promotion_switches_the_model_id(db, settings, personas, monkeypatch):
    monkeypatch.setenv("EVE_OPENAI_KEY", TEST_API_KEY)
    ft = "ft:gpt-4o-mini-2024-07-18:org:eve-v1:abc123"
    async with FakeOpenAIServer(api_key=TEST_API_KEY, base_models=["gpt-4o-mini", ft]) as server:
        server.responder = lambda req: f"Answer from {req.json['model']}."
        eve = personas["eve"].model_copy(update={"model": ModelSpec(
            backend="openai", model="gpt-4o-mini", base_url=server.base_url, api_key_env="EVE_OPENAI_KEY")})
        pool = BackendPool(settings)
        sync = ModelSync(db, pool, {"eve": eve})
        engine = ChatEngine(pool.for_persona)
        try:
            await sync.start()
            assert await reply(engine, eve) == ("Answer from gpt-4o-mini.", "gpt-4o-mini")
            missing = await candidate(db, settings, "eve", backend="openai", remote="ft:gpt-4o-mini:org:deleted:zzz")
            with pytest.raises(PromotionError, match="OpenAI has no model 'ft:gpt-4o-mini:org:deleted:zzz'"):
                await promote(db, settings, eve, missing)
            no_id = await candidate(db, settings, "eve", backend="openai")
            with pytest.raises(PromotionError, match="no fine-tuned OpenAI model id"):
                await promote(db, settings, eve, no_id)
            good = await candidate(db, settings, "eve", backend="openai", remote=ft)
            monkeypatch.setenv("EVE_OPENAI_KEY", "sk-wrong")
            with pytest.raises(PromotionError, match="refused the API key in EVE_OPENAI_KEY"):
                await promote(db, settings, eve, good)
            monkeypatch.setenv("EVE_OPENAI_KEY", TEST_API_KEY)
            result = await promote(db, settings, eve, good)
            assert result.version == good and result.unload_pending is None
            await sync.sync()
            assert await reply(engine, eve) == (f"Answer from {ft}.", ft)
            # Rollback with no earlier version: back to the spec's model.
            result = await rollback(db, settings, eve)
            assert result.version is None and "its spec model" in result.summary()
            await sync.sync()
            assert await reply(engine, eve) == ("Answer from gpt-4o-mini.", "gpt-4o-mini")
        finally:
            await sync.aclose()
            await pool.aclose()


async def test_rollback_skips_tainted_versions(db, settings, personas):
    tim = personas["tim"]
    v1, v2, v3 = [await candidate(db, settings) for _ in range(3)]
    for v in (v1, v2, v3):
        await promote(db, settings, tim, v)
    await registry.mark_tainted(db, v2, "member 42 forgotten")
    result = await rollback(db, settings, tim)
    assert result.version == v1 and result.previous == v3
    with pytest.raises(PromotionError, match="is tainted"):
        await rollback(db, settings, tim, to=v2)
    assert (await rollback(db, settings, tim, to=v2, force=True)).version == v2
    with pytest.raises(PromotionError, match="already active"):
        await rollback(db, settings, tim, to=v2)


def cli(*args):
    from typer.testing import CliRunner

    from bot.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_model_cli(settings):
    import asyncio
    import json

    from bot.store import open_db

    async def in_db(fn):
        async with open_db(settings.core.db_path) as db:
            return await fn(db)

    async def two(db):
        return await candidate(db, settings), await candidate(db, settings, passed=False)

    v1, v2 = asyncio.run(in_db(two))
    r = cli("model", "promote", "--persona", "tim", "--json", "--no-wait")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"persona": "tim", "active": v1, "previous": None, "unload_pending": None}
    r = cli("model", "promote", "--persona", "tim", "--version", v2)
    assert r.exit_code == 1 and "has not passed the evaluation gate" in r.stderr and "Traceback" not in r.output
    r = cli("model", "promote", "--persona", "tim", "--version", "2", "--force", "--no-wait")
    assert r.exit_code == 0 and f"promoted to {v2} (was {v1})" in r.stdout
    asyncio.run(in_db(lambda db: registry.mark_tainted(db, v1, "member forgotten")))
    r = cli("model", "list", "--persona", "tim", "--json")
    rows = {row["name"]: row for row in json.loads(r.stdout)["versions"]}
    assert rows[v2]["status"] == "active" and rows[v1]["tainted"] and rows[v1]["gate"]["passed"]
    assert "tainted" in cli("model", "list").stdout
    r = cli("model", "rollback", "--persona", "tim", "--no-wait")
    assert r.exit_code == 0 and "rolled back to its spec model" in r.stdout   # v1 is tainted: skipped
    r = cli("model", "rollback", "--persona", "tim")
    assert r.exit_code == 1 and "no active version to roll back from" in r.stderr
