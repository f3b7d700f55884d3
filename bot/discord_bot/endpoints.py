"""Point discord.py at a Discord-compatible server other than discord.com.

discord.py keeps its REST base (`Route.BASE`, also used for interaction responses and webhooks) and
its gateway URL (`DiscordWebSocket.DEFAULT_GATEWAY`; `Client.connect()` never asks
`GET /gateway/bot`) in two class constants. The entry point calls `apply_endpoints` once at
start-up from the DISCORD_API_BASE / DISCORD_GATEWAY_URL settings; unset settings leave Discord's
own endpoints. Self-hosted Discord-compatible servers and the tests' fake use this.
"""
from __future__ import annotations

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.settings import DiscordSettings


def apply_endpoints(settings: DiscordSettings) -> None:
    """`api_base` includes the version path (e.g. `http://127.0.0.1:8080/api/v10`)."""
    if settings.api_base:
        Route.BASE = settings.api_base.rstrip("/")
    if settings.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
