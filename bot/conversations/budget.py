"""One budget for every request the bot makes to the chat platform, by priority.

Discord allows a bot about 50 requests per second in all, plus per-route buckets (about 5 messages
per 5 s per channel). `RequestBudget` keeps the bot under `rate` requests in every sliding window
of `window_s` (45 per second by default, safely under Discord's 50) and spaces them evenly (bursts
of at most `BURST`), so that delays on the way (a busy event loop, the network) cannot bunch a
second's requests into Discord's next window. It hands free slots to the most
urgent waiter first, honours per-route buckets and 429s as the platform reports them, and paces
streaming edits by how many replies are streaming at once.

Priorities (lower is more urgent):
- `URGENT`: what a member waits for: a reply's first message, its final edit, notices, command
  responses;
- `NORMAL`: reads and set-up (history, fetching a replied-to message, finding a webhook); anything
  not tagged otherwise;
- `EDIT`: an intermediate edit of a streaming reply (it is folded into the next one if late);
- `COSMETIC`: the typing indicator: only sent when the budget has room at once (`try_acquire`).

How requests are tagged: the caller wraps a platform call in `async with budget.slot(priority)`.
The slot is taken before the call, and the HTTP layer's hook (`before_request`, called for every
request the client library sends, its own internal ones included) sees that this request is
prepaid and does not take another; a request outside any slot takes one at `NORMAL` there. A
retry (after a 429) takes a new slot at the same priority.

Observation: `after_request(route_class, route_key, status, headers)` is called with each response:
it counts requests by route class and status (`counts`, the hook for metrics), reads the
`X-RateLimit-*` headers into per-route buckets, and on a 429 pauses the route (or, for a global
429, everything) for `retry_after`.

Adaptive streaming: `edit_interval(base)` is the time between intermediate edits of one reply:
`base` while few replies stream, longer when more stream than half the budget can edit every
`base` seconds. `coalesced_edits` counts the edits that the base interval would have sent and that
were folded into a later one.

Nothing here imports `discord`.
"""
from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import time
from collections import Counter, deque
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import AsyncIterator, Callable, Mapping

URGENT, NORMAL, EDIT, COSMETIC = 0, 1, 2, 3


class Priority(IntEnum):
    URGENT = URGENT
    NORMAL = NORMAL
    EDIT = EDIT
    COSMETIC = COSMETIC


# The slot the current task holds for its next request (a one-element list: [prepaid requests left]).
_PREPAID: contextvars.ContextVar[list | None] = contextvars.ContextVar("personabot_prepaid_request", default=None)
_PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar("personabot_request_priority", default=NORMAL)

# Share of the budget intermediate edits may use; the rest stays free for first posts, final edits,
# reads and commands.
EDIT_SHARE = 0.5
BURST = 1                   # requests that may go out back to back before even spacing applies
RATE_WINDOW_S = 10.0        # what `rate()` averages over


class RequestBudget:
    def __init__(self, rate: float = 45.0, *, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"requests per second must be positive, got {rate}")
        self.rate_limit = rate
        self.window_s = window_s
        self._per_window = max(1, int(rate * window_s))
        self._clock = clock
        self._granted: deque[float] = deque()           # grant times within the last window
        self._spacing = window_s / rate
        self._credit_at = 0.0                           # spacing: when the bucket of BURST slots is full again
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._paused_until = 0.0                        # a global 429
        self._routes: dict[str, float] = {}             # route key -> time its bucket refills (when exhausted)
        self._recent: deque[float] = deque()            # request times within RATE_WINDOW_S
        self._second: deque[float] = deque()            # request times within the last second
        self.counts: Counter[tuple[str, int]] = Counter()   # (route class, HTTP status) -> requests
        self.rate_limited = 0                           # 429s received
        self.coalesced_edits = 0
        self.streams = 0                                # replies streaming now
        self.peak_rate = 0.0
        self.observers: list[Callable[[str, int], None]] = []   # called with (route class, status) per response

    # -- slots ------------------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    def _has_waiters(self) -> bool:
        # Cancelled waiters leave done futures in the heap; drop those at its top (O(1) usually).
        waiters = self._waiters
        while waiters and waiters[0][2].done():
            heapq.heappop(waiters)
        return bool(waiters)

    def _free(self, now: float) -> bool:
        granted = self._granted
        while granted and granted[0] <= now - self.window_s:
            granted.popleft()
        return (len(granted) < self._per_window and now >= self._paused_until
                and self._credit_at - now <= (BURST - 1) * self._spacing)

    def _take(self, now: float) -> None:
        self._granted.append(now)
        self._credit_at = max(self._credit_at, now) + self._spacing

    def try_acquire(self, priority: int = COSMETIC) -> bool:
        """Take a slot only if one is free now and nobody waits (for requests worth skipping)."""
        now = self._clock()
        if self._has_waiters() or not self._free(now):
            return False
        self._take(now)
        return True

    async def acquire(self, priority: int = NORMAL) -> None:
        """Wait for a slot; more urgent waiters go first, equal ones in arrival order."""
        now = self._clock()
        if not self._has_waiters() and self._free(now):
            self._take(now)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), fut))
        self._schedule()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # Granted just as we were cancelled: give the slot back to the next waiter.
                if self._granted:
                    self._granted.pop()
                    self._credit_at -= self._spacing
                self._release()
            raise

    def _schedule(self) -> None:
        if self._timer is not None or not self._waiters:
            return
        now = self._clock()
        at = max(self._paused_until, self._granted[0] + self.window_s if len(self._granted) >= self._per_window else now,
                 self._credit_at - (BURST - 1) * self._spacing)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, at - now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._release()

    def _release(self) -> None:
        now = self._clock()
        while self._waiters and self._free(now):
            _, _, fut = heapq.heappop(self._waiters)
            if fut.done():
                continue
            self._take(now)
            fut.set_result(None)
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)
        self._schedule()

    @asynccontextmanager
    async def slot(self, priority: int = NORMAL) -> AsyncIterator[None]:
        """`async with budget.slot(p): await platform_call()`: the call's request is paid for here."""
        await self.acquire(priority)
        prepaid = _PREPAID.set([1])
        tagged = _PRIORITY.set(int(priority))
        try:
            yield
        finally:
            _PRIORITY.reset(tagged)
            _PREPAID.reset(prepaid)

    def prepaid_slot(self, priority: int) -> "_Prepaid":
        """A slot acquired already (see `acquire`), to be used by the next request in a `with` block."""
        return _Prepaid(priority)

    # -- the HTTP layer's hooks ---------------------------------------------------------------------

    async def before_request(self, route_key: str) -> None:
        """Called for every request just before it is sent: waits for its route and, unless prepaid, a slot."""
        refill = self._routes.get(route_key)
        if refill is not None:
            wait = refill - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._routes.pop(route_key, None)
        prepaid = _PREPAID.get()
        if prepaid is not None and prepaid[0] > 0:
            prepaid[0] -= 1
            return
        await self.acquire(_PRIORITY.get())

    def after_request(self, route_class: str, route_key: str, status: int, headers: Mapping[str, str]) -> None:
        now = self._clock()
        self.counts[(route_class, status)] += 1
        recent = self._recent
        recent.append(now)
        while recent and recent[0] <= now - RATE_WINDOW_S:
            recent.popleft()
        # Peak over any one second, as the platform's global limit counts it.
        second = self._second
        second.append(now)
        while second and second[0] <= now - 1.0:
            second.popleft()
        self.peak_rate = max(self.peak_rate, float(len(second)))
        for observe in self.observers:
            observe(route_class, status)
        remaining = _header(headers, "X-RateLimit-Remaining")
        reset_after = _float(_header(headers, "X-RateLimit-Reset-After"))
        if status == 429:
            self.rate_limited += 1
            retry = _float(_header(headers, "Retry-After")) or reset_after or 1.0
            scope = (_header(headers, "X-RateLimit-Scope") or "").lower()
            if (_header(headers, "X-RateLimit-Global") or "").lower() == "true" or scope == "global":
                self._paused_until = max(self._paused_until, now + retry)
            else:
                self._routes[route_key] = now + retry
        elif remaining == "0" and reset_after is not None:
            self._routes[route_key] = now + reset_after

    # -- streaming --------------------------------------------------------------------------------

    def edit_interval(self, base: float) -> float:
        """Seconds between intermediate edits of one streaming reply, given how many stream now."""
        edits_per_s = max(1.0, self.rate_limit * EDIT_SHARE)
        return max(base, self.streams / edits_per_s)

    def stream_started(self) -> None:
        self.streams += 1

    def stream_ended(self) -> None:
        self.streams = max(0, self.streams - 1)

    def coalesced(self, n: int) -> None:
        self.coalesced_edits += n

    # -- status -----------------------------------------------------------------------------------

    def rate(self) -> float:
        """Requests per second over the last RATE_WINDOW_S seconds."""
        now = self._clock()
        recent = self._recent
        while recent and recent[0] <= now - RATE_WINDOW_S:
            recent.popleft()
        return len(recent) / RATE_WINDOW_S

    def total(self) -> int:
        return sum(self.counts.values())


class _Prepaid:
    """Marks the next request in this `with` block as paid for by a slot acquired earlier."""

    __slots__ = ("_priority", "_tokens")

    def __init__(self, priority: int):
        self._priority = priority
        self._tokens: tuple | None = None

    def __enter__(self) -> None:
        self._tokens = (_PREPAID.set([1]), _PRIORITY.set(int(self._priority)))

    def __exit__(self, *exc) -> None:
        prepaid, priority = self._tokens
        _PRIORITY.reset(priority)
        _PREPAID.reset(prepaid)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
