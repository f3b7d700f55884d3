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

The sink is the only platform-specific part (see `MessageSink`).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Callable, Protocol

from bot.conversations.split import DISCORD_LIMIT, split_message


class MessageGone(Exception):
    """Raised by a sink when the message (or its channel) no longer exists."""


class MessageSink(Protocol):
    async def send(self, text: str) -> Any:
        """Post a new message; return a handle for `edit`."""

    async def edit(self, handle: Any, text: str) -> None:
        """Replace a posted message's text; raise MessageGone if it was deleted."""


@dataclass
class StreamResult:
    text: str = ""                                   # everything the stream produced
    handles: list = field(default_factory=list)     # one per message sent, in order
    edits: int = 0
    abandoned: bool = False
    first_visible_s: float | None = None            # from the start to the first send


async def render_stream(
    deltas: AsyncIterable[str],
    sink: MessageSink,
    *,
    edit_interval_s: float = 1.0,
    limit: int = DISCORD_LIMIT,
    clock: Callable[[], float] = time.monotonic,
) -> StreamResult:
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

    async def produce() -> None:
        nonlocal changed
        async for delta in iterator:
            result.text += delta
            changed = True
            notify()

    producer = asyncio.ensure_future(produce())
    producer.add_done_callback(notify)
    last_update = float("-inf")

    async def update() -> None:
        nonlocal last_update
        parts = split_message(result.text, limit)
        for i, part in enumerate(parts):
            if i < len(result.handles):
                if shown[i] != part:
                    await sink.edit(result.handles[i], part)
                    shown[i] = part
                    result.edits += 1
            else:
                result.handles.append(await sink.send(part))
                shown.append(part)
                if result.first_visible_s is None:
                    result.first_visible_s = clock() - started
        last_update = clock()

    try:
        while True:
            if not producer.done() and not changed:
                wake = loop.create_future()
                await wake
            changed = False
            if result.handles:
                # Something is on screen: the next change is an edit, so honour the interval,
                # collecting more text meanwhile.
                wait = last_update + edit_interval_s - clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            finished = producer.done()
            if finished:
                producer.result()  # re-raise a stream failure
            await update()
            if finished:
                return result
    except MessageGone:
        result.abandoned = True
        return result
    finally:
        if not producer.done():
            producer.cancel()
            try:
                await producer
            except (asyncio.CancelledError, Exception):  # the reply is abandoned either way
                pass
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
