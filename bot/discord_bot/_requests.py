"""Every REST request discord.py sends for the bot passes through the one `RequestBudget`.

discord.py takes an `aiohttp.TraceConfig` (`Client(http_trace=...)`, public API) and uses its HTTP
session for REST calls, webhooks and interaction responses alike. `request_trace(budget)` builds
one whose request-start hook waits for the request's route bucket and a budget slot (unless the
caller prepaid it with `budget.slot(...)`), and whose request-end hook reports the route class,
status and rate-limit headers back (`RequestBudget.after_request`; metrics hook in there too).
The gateway websocket and anything not under the REST base are left alone.

Route classes (what a request is for, without ids): `message.create`, `message.edit`,
`message.read`, `history`, `typing`, `webhook.execute`, `webhook.edit`, `webhook.manage`,
`interaction`, `command.sync`, `other`.
"""
from __future__ import annotations

import functools
import re

import aiohttp

from bot.conversations.budget import RequestBudget

_ID = re.compile(r"/\d{5,}")
# (method, pattern on the path after the API version) -> route class, first match wins.
_CLASSES: list[tuple[str | None, re.Pattern, str]] = [
    ("POST", re.compile(r"^/channels/\d+/messages$"), "message.create"),
    ("PATCH", re.compile(r"^/channels/\d+/messages/\d+$"), "message.edit"),
    ("GET", re.compile(r"^/channels/\d+/messages$"), "history"),
    ("GET", re.compile(r"^/channels/\d+/messages/\d+$"), "message.read"),
    ("POST", re.compile(r"^/channels/\d+/typing$"), "typing"),
    (None, re.compile(r"^/channels/\d+/webhooks$"), "webhook.manage"),
    ("POST", re.compile(r"^/webhooks/\d+/[^/]+$"), "webhook.execute"),
    ("PATCH", re.compile(r"^/webhooks/\d+/[^/]+/messages/"), "webhook.edit"),
    (None, re.compile(r"^/interactions/"), "interaction"),
    (None, re.compile(r"^/applications/\d+/(guilds/\d+/)?commands"), "command.sync"),
]
_VERSION = re.compile(r"^/api(/v\d+)?")


@functools.lru_cache(maxsize=1024)   # every request asks; a channel's posts and reads repeat their paths
def route_of(method: str, path: str) -> tuple[str, str]:
    """(route class, route key) of a REST request. The key keeps the major id (channel, webhook)
    and blanks the others, as Discord's per-route buckets do."""
    path = _VERSION.sub("", path)
    route_class = "other"
    for want, pattern, name in _CLASSES:
        if (want is None or want == method) and pattern.match(path):
            route_class = name
            break
    parts = path.split("/")
    # /channels/{id}/..., /webhooks/{id}/{token}/...: the first id is the major parameter.
    major = 3 if len(parts) > 2 and parts[1] in ("channels", "guilds", "webhooks") else 1
    head, tail = "/".join(parts[: major]), "/".join(parts[major:])
    return route_class, f"{method} {head}/{_ID.sub('/{id}', '/' + tail)[1:]}"


def request_trace(budget: RequestBudget) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    def is_rest(url) -> bool:
        return url.scheme in ("http", "https") and not url.path.endswith("/gateway")

    async def on_start(session, ctx, params: aiohttp.TraceRequestStartParams) -> None:
        ctx.route = None
        if not is_rest(params.url):
            return
        ctx.route = route_of(params.method, params.url.path)
        await budget.before_request(ctx.route[1])

    async def on_end(session, ctx, params: aiohttp.TraceRequestEndParams) -> None:
        route = getattr(ctx, "route", None)
        if route is not None:
            budget.after_request(route[0], route[1], params.response.status, params.response.headers)

    async def on_exception(session, ctx, params: aiohttp.TraceRequestExceptionParams) -> None:
        route = getattr(ctx, "route", None)
        if route is not None:
            budget.after_request(route[0], route[1], 0, {})   # status 0: no response (timeout, connection)

    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace
