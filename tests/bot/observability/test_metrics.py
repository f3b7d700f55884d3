"""The Prometheus series, their labels, and the /healthz + /metrics server."""
import asyncio
import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.observability.metrics import BotMetrics, TrainerMetrics
from bot.observability.server import OpsServer, database_check


def _parse(metrics) -> dict:
    from prometheus_client import generate_latest

    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_bot_series():
    m = BotMetrics()
    m.message("tim")
    m.reply("tim", "ok", 0.3, 1.2)
    m.reply("tim", "interrupted", None, 5.0)
    m.refused("eve")
    m.backend_error("vllm", "BackendTimeoutError")
    m.discord_request("message.create", 429)
    m.discord_request("history", 0)
    m.watch_queue(lambda: 7)
    m.watch_models(lambda: {"tim": "tim-v3", "eve": None})
    s = _parse(m)
    assert s[("personabot_messages_total", (("persona", "tim"),))] == 1
    assert s[("personabot_replies_total", (("outcome", "ok"), ("persona", "tim")))] == 1
    assert s[("personabot_replies_total", (("outcome", "interrupted"), ("persona", "tim")))] == 1
    assert s[("personabot_replies_total", (("outcome", "busy"), ("persona", "eve")))] == 1
    assert s[("personabot_reply_seconds_count", (("phase", "first_text"),))] == 1
    assert s[("personabot_reply_seconds_count", (("phase", "complete"),))] == 1  # an interrupted reply has no complete time
    assert s[("personabot_backend_errors_total", (("backend", "vllm"), ("kind", "BackendTimeoutError")))] == 1
    assert s[("personabot_discord_requests_total", (("route_class", "message.create"), ("status", "429")))] == 1
    assert s[("personabot_discord_requests_total", (("route_class", "history"), ("status", "error")))] == 1
    assert s[("personabot_queue_depth", ())] == 7
    assert s[("personabot_active_model_info", (("persona", "tim"), ("version", "tim-v3")))] == 1
    assert s[("personabot_active_model_info", (("persona", "eve"), ("version", "base")))] == 1
    # Two instances never share a registry (no module-level state).
    assert ("personabot_messages_total", (("persona", "tim"),)) not in _parse(BotMetrics())


def test_trainer_series():
    t = TrainerMetrics()
    t.training_run("tim", "promoted")
    t.training_run("tim", "promoted")
    t.training_run("eve", "failed")
    s = _parse(t)
    assert s[("personabot_training_runs_total", (("outcome", "promoted"), ("persona", "tim")))] == 2
    assert s[("personabot_training_runs_total", (("outcome", "failed"), ("persona", "eve")))] == 1


async def test_the_request_budget_counts_every_request_over_real_http():
    from bot.conversations.budget import RequestBudget
    from bot.discord_bot._requests import request_trace

    from aiohttp import web

    async def ok(request):
        return web.json_response({}, status=200)

    async def limited(request):
        return web.json_response({"retry_after": 1}, status=429)

    app = web.Application()
    app.router.add_post("/api/v10/channels/{c}/messages", ok)
    app.router.add_patch("/api/v10/channels/{c}/messages/{m}", limited)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    m = BotMetrics()
    budget = RequestBudget(45)
    budget.observers.append(m.discord_request)    # as PersonaBot wires it
    try:
        async with aiohttp.ClientSession(trace_configs=[request_trace(budget)]) as session:
            await (await session.post(f"http://127.0.0.1:{port}/api/v10/channels/123456789012/messages")).read()
            await (await session.patch(f"http://127.0.0.1:{port}/api/v10/channels/123456789012/messages/98765432101")).read()
    finally:
        await runner.cleanup()
    s = _parse(m)
    assert s[("personabot_discord_requests_total", (("route_class", "message.create"), ("status", "200")))] == 1
    assert s[("personabot_discord_requests_total", (("route_class", "message.edit"), ("status", "429")))] == 1


async def test_ops_server_health_and_metrics(db):
    m = BotMetrics()
    m.message("tim")
    state = {"reason": None}

    async def gateway():
        return state["reason"]

    async def stuck():
        await asyncio.sleep(10)

    server = OpsServer(m.registry, {"discord": gateway, "database": database_check(db)}, host="127.0.0.1", port=0,
                       check_timeout_s=0.2)
    async with server, aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{server.port}"
        async with session.get(base + "/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "ok", "checks": {"discord": "ok", "database": "ok"}}
        state["reason"] = "not connected to the Discord gateway"
        async with session.get(base + "/healthz") as r:
            assert r.status == 503
            assert (await r.json())["checks"] == {"discord": "not connected to the Discord gateway", "database": "ok"}
        async with session.get(base + "/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            assert 'personabot_messages_total{persona="tim"} 1.0' in await r.text()
        server.checks["slow"] = stuck
        state["reason"] = None
        async with session.get(base + "/healthz") as r:
            assert r.status == 503 and (await r.json())["checks"]["slow"] == "no answer within 0.2s"
    await db.close()
    check = database_check(db)
    assert (await check()).startswith("database error")
