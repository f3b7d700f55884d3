"""Channels where the platform refuses the bot something it needs, so the bot adapts instead of retrying.

`ChannelProblems.report(channel, need, detail)` records a refusal (a missing permission, an
unreadable history) and returns True only the first time, so the caller logs it once per channel.
While a channel's `SEND` problem stands the bot gives up answering there quietly (no request at
all), and while `HISTORY` stands it answers from what it holds instead of reading history again.
Problems expire after `ttl_s` (permissions get fixed), and the front end clears a channel's
problems when its permissions change. `/admin status` lists them.

Nothing here imports `discord`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

SEND = "Send Messages"
HISTORY = "Read Message History"
WEBHOOKS = "Manage Webhooks"
UNREADABLE = "history unreadable"     # 5xx or timeout: transient, nothing to fix in the permissions


@dataclass(frozen=True, slots=True)
class Problem:
    channel_id: int
    need: str
    detail: str
    since: float


class ChannelProblems:
    def __init__(self, ttl_s: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self._clock = clock
        self._problems: dict[tuple[int, str], Problem] = {}

    def report(self, channel_id: int, need: str, detail: str = "") -> bool:
        """Record a refusal; True if it is new (log it), False if already known."""
        key = (channel_id, need)
        known = self._problems.get(key)
        now = self._clock()
        fresh = known is None or now - known.since > self.ttl_s
        if fresh:
            self._problems[key] = Problem(channel_id, need, detail, now)
        return fresh

    def has(self, channel_id: int, need: str) -> bool:
        known = self._problems.get((channel_id, need))
        if known is None:
            return False
        if self._clock() - known.since > self.ttl_s:
            del self._problems[(channel_id, need)]
            return False
        return True

    def clear(self, channel_id: int | None = None, need: str | None = None) -> None:
        """Forget a channel's problems (one kind, or all), or every channel's."""
        for key in list(self._problems):
            if (channel_id is None or key[0] == channel_id) and (need is None or key[1] == need):
                del self._problems[key]

    def current(self) -> list[Problem]:
        now = self._clock()
        return sorted((p for p in self._problems.values() if now - p.since <= self.ttl_s),
                      key=lambda p: (p.channel_id, p.need))
