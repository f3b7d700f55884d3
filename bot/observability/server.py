"""The operations HTTP server: `GET /healthz` and `GET /metrics`, on PERSONABOT_METRICS_PORT.

It runs on the process's own event loop (aiohttp), so health checks look at live objects:

- `/healthz` runs every check at once, each bounded by `check_timeout_s`. A check is an async
  callable returning None when healthy or a short reason. All healthy: 200
  `{"status": "ok", "checks": {name: "ok"}}`; otherwise 503 with `"status": "unhealthy"` and each
  failing check's reason. Reasons are fixed texts and exception class names, nothing personal.
- `/metrics` is `prometheus_client.generate_latest` of the process's registry.

`database_check(db)` is the shared check that the database answers (`SELECT 1`).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[str | None]]


class OpsServer:
    def __init__(self, registry: CollectorRegistry, checks: Mapping[str, HealthCheck], *, host: str = "127.0.0.1",
                 port: int = 9100, check_timeout_s: float = 3.0):
        self.registry = registry
        self.checks = dict(checks)
        self.host = host
        self.port = port
        self.check_timeout_s = check_timeout_s
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self.port

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "OpsServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def health(self) -> tuple[bool, dict[str, str]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run_check(self.checks[n]) for n in names))
        report = {name: reason or "ok" for name, reason in zip(names, results)}
        return all(r is None for r in results), report

    async def _run_check(self, check: HealthCheck) -> str | None:
        try:
            return await asyncio.wait_for(check(), self.check_timeout_s)
        except asyncio.TimeoutError:
            return f"no answer within {self.check_timeout_s:g}s"
        except Exception as exc:  # a failing check is an unhealthy answer, not a server error
            return f"check failed: {type(exc).__name__}"

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, report = await self.health()
        return web.json_response({"status": "ok" if ok else "unhealthy", "checks": report}, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def database_check(db) -> HealthCheck:
    """Healthy while the aiosqlite connection answers `SELECT 1`."""

    async def check() -> str | None:
        try:
            async with db.execute("SELECT 1") as cursor:
                row = await cursor.fetchone()
        except Exception as exc:
            return f"database error: {type(exc).__name__}"
        return None if row and row[0] == 1 else "database gave no answer"

    return check
