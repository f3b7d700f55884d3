"""Show a streaming reply in a chat: send the first text at once, then edit, at most once per interval.

Contract of `render_stream(deltas, sink, edit_interval_s=...)`:
- the first visible text is sent as soon as it arrives (no waiting for the interval);
- after that, the messages are brought up to date at most once per `edit_interval_s`, and only the
  messages whose text changed are edited, so each message sees at most one edit per interval;
- the text is split with `split_message`; a part that no longer fits starts a new message;
- one sink call runs at a time: a slow or rate-limited edit (the platform client waits out a 429
  and retries) delays the next update instead of piling more requests behind it;
- the final text is shown exactly once the stream ends (the last update also honours the interval);
- if the platform says a message is gone (deleted mid-stream), the stream is closed and the reply
  abandoned: `StreamResult.abandoned` is True and nothing more is sent.

With a `pacer` (the bot's `RequestBudget`), every sink call first takes a request slot: sends and
the final edit as `URGENT`, intermediate edits as `EDIT`. The interval between intermediate edits
is `pacer.edit_interval(edit_interval_s)`, longer while many replies stream; an intermediate edit
still waiting for its slot when the stream ends becomes the final edit instead, and the final edit
waits only for `edit_interval_s` since the last one (the platform's per-message pace), not for the
adaptive interval.

The sink is the only platform-specific part (see `MessageSink`).
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Callable, ContextManager, Protocol

from bot.conversations.budget import EDIT, URGENT
from bot.conversations.split import DISCORD_LIMIT, split_message


class MessageGone(Exception):
    """Raised by a sink when the message (or its channel) no longer exists."""


class MessageSink(Protocol):
    async def send(self, text: str) -> Any:
        """Post a new message; return a handle for `edit`."""

    async def edit(self, handle: Any, text: str) -> None:
        """Replace a posted message's text; raise MessageGone if it was deleted."""


class Pacer(Protocol):
    """What `render_stream` needs of the request budget (`bot.conversations.budget.RequestBudget`)."""

    async def acquire(self, priority: int) -> None: ...
    def prepaid_slot(self, priority: int) -> ContextManager: ...
    def edit_interval(self, base: float) -> float: ...
    def stream_started(self) -> None: ...
    def stream_ended(self) -> None: ...
    def coalesced(self, n: int) -> None: ...


class _Unpaced:
    async def acquire(self, priority: int) -> None:
        return None

    def prepaid_slot(self, priority: int) -> ContextManager:
        return contextlib.nullcontext()

    def edit_interval(self, base: float) -> float:
        return base

    def stream_started(self) -> None:
        pass

    def stream_ended(self) -> None:
        pass

    def coalesced(self, n: int) -> None:
        pass


@dataclass
class StreamResult:
    text: str = ""                                   # everything the stream produced
    handles: list = field(default_factory=list)     # one per message sent, in order
    edits: int = 0
    abandoned: bool = False
    first_visible_s: float | None = None            # from the start to the first send
    coalesced: int = 0                              # edits folded into later ones (adaptive pacing)


async def render_stream(
    deltas: AsyncIterable[str],
    sink: MessageSink,
    *,
    edit_interval_s: float = 1.0,
    limit: int = DISCORD_LIMIT,
    clock: Callable[[], float] = time.monotonic,
    pacer: Pacer | None = None,
) -> StreamResult:
    pacer = pacer or _Unpaced()
    result = StreamResult()
    iterator = aiter(deltas)
    shown: list[str] = []
    loop = asyncio.get_running_loop()
    # New text (or the stream's end) wakes the loop through one future, not an Event plus a
    # waiter task per wait: an instant reply costs the producer task and nothing more.
    changed = False
    wake: asyncio.Future | None = None
    started = clock()

    def notify(_: object = None) -> None:
        nonlocal wake
        if wake is not None:
            if not wake.done():
                wake.set_result(None)
            wake = None

    pending_since: float | None = None   # when the oldest text not yet on screen arrived

    async def produce() -> None:
        nonlocal changed, pending_since
        async for delta in iterator:
            result.text += delta
            changed = True
            if pending_since is None:
                pending_since = clock()
            notify()

    producer = asyncio.ensure_future(produce())
    producer.add_done_callback(notify)
    last_update = float("-inf")

    async def paid(call, priority: int, prepaid: bool):
        if prepaid:
            with pacer.prepaid_slot(priority):
                return await call()
        await pacer.acquire(priority)
        with pacer.prepaid_slot(priority):
            return await call()

    on_screen = ""   # the stream's text as of the last update (everything sent or edited in)

    async def update(final: bool, prepaid: bool) -> None:
        nonlocal last_update, on_screen
        on_screen = result.text
        parts = split_message(on_screen, limit)
        for i, part in enumerate(parts):
            if i < len(result.handles):
                if shown[i] != part:
                    handle = result.handles[i]
                    await paid(lambda: sink.edit(handle, part), URGENT if final else EDIT, prepaid)
                    prepaid = False
                    shown[i] = part
                    result.edits += 1
            else:
                result.handles.append(await paid(lambda: sink.send(part), URGENT, prepaid))
                prepaid = False
                shown.append(part)
                if result.first_visible_s is None:
                    result.first_visible_s = clock() - started
        last_update = clock()

    async def slot_or_end() -> bool:
        """Wait for an EDIT slot; False (no slot held) if the stream ends first."""
        slot = asyncio.ensure_future(pacer.acquire(EDIT))
        await asyncio.wait({slot, producer}, return_when=asyncio.FIRST_COMPLETED)
        if slot.done():
            slot.result()
            return True
        slot.cancel()
        try:
            await slot
        except asyncio.CancelledError:
            pass
        return False

    pacer.stream_started()
    try:
        while True:
            if not producer.done() and not changed:
                wake = loop.create_future()
                await wake
            changed = False
            prepaid = False
            if producer.done() and result.handles and result.text == on_screen:
                # The stream ended with everything on screen already (a reply that fits its first
                # post): no final edit is due, so no reason to hold the conversation for the interval.
                producer.result()  # re-raise a stream failure
                return result
            if result.handles:
                # Something is on screen: the next change is an edit, so honour the interval,
                # collecting more text meanwhile; the stream's end cuts the wait short.
                interval = pacer.edit_interval(edit_interval_s)
                wait = last_update + interval - clock()
                if wait > 0 and not producer.done():
                    await asyncio.wait({producer}, timeout=wait)
                if not producer.done():
                    prepaid = await slot_or_end()
                if producer.done():
                    # A slot already taken for an intermediate edit pays for the final one instead.
                    wait = last_update + edit_interval_s - clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
            if not prepaid:
                # The first post or the final edit: take the slot before reading the text, so
                # whatever arrived while waiting for it goes out in the same request.
                await pacer.acquire(URGENT)
                prepaid = True
            # Edits the base interval would have sent for text that waited longer (adaptive pacing).
            folded = int((clock() - pending_since) / edit_interval_s - 0.5) if pending_since is not None else 0
            if folded > 0:
                result.coalesced += folded
                pacer.coalesced(folded)
            pending_since = None
            finished = producer.done()
            if finished:
                producer.result()  # re-raise a stream failure
            await update(finished, prepaid)
            if finished:
                return result
    except MessageGone:
        result.abandoned = True
        return result
    finally:
        pacer.stream_ended()
        if not producer.done():
            producer.cancel()
            try:
                await producer
            except (asyncio.CancelledError, Exception):  # the reply is abandoned either way
                pass
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
