"""Who generates when: one reply at a time per conversation, a bounded number overall.

`ConversationQueue` runs one worker per conversation key. A message that arrives while the
conversation's reply is being generated waits, and every message that waited is handed to the
handler together as the next batch: the reply to the batch reads them all as one turn, instead of
the persona answering a burst message by message. Batches of one key never overlap, and keys are
independent. A worker exists only while its conversation has work, so memory follows activity.

`GenerationGate` bounds the generations running at once across all conversations and the number
waiting for a slot. `gate.slot()` raises `Busy` straight away when the queue is full, so the caller
can answer "busy, try again" instead of making the member wait without end.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[Hashable, list[T]], Awaitable[None]]


class Busy(Exception):
    """Every generation slot is taken and the waiting queue is full."""


class GenerationGate:
    def __init__(self, max_concurrent: int, max_queue: int):
        if max_concurrent < 1 or max_queue < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queue >= 0")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._sem = asyncio.Semaphore(max_concurrent)
        self.running = 0
        self.waiting = 0

    def slot(self) -> "_Slot":
        """An async context manager holding one generation slot. Raises Busy now if the queue is full.

        The place in the queue is taken by this call, so enter the returned slot at once
        (`async with gate.slot():`), with no await in between.
        """
        if self.running + self.waiting >= self.max_concurrent + self.max_queue:
            raise Busy()
        self.waiting += 1  # counted at once, so a burst can't overfill the queue before awaiting
        return _Slot(self)


class _Slot:
    def __init__(self, gate: GenerationGate):
        self._gate = gate

    async def __aenter__(self) -> None:
        gate = self._gate
        try:
            await gate._sem.acquire()
        finally:
            gate.waiting -= 1
        gate.running += 1

    async def __aexit__(self, *exc) -> None:
        self._gate.running -= 1
        self._gate._sem.release()


@dataclass
class _Conversation(Generic[T]):
    pending: list[T] = field(default_factory=list)
    worker: asyncio.Task | None = None


class ConversationQueue(Generic[T]):
    """Serialise work per conversation key, folding what arrives meanwhile into the next batch."""

    def __init__(self, handler: Handler, *, on_error: Callable[[Hashable, BaseException], None] | None = None):
        self._handler = handler
        self._on_error = on_error
        self._conversations: dict[Hashable, _Conversation[T]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """Conversations with a reply in progress or messages waiting."""
        return len(self._conversations)

    @property
    def pending(self) -> int:
        """Messages waiting for their conversation's current reply to finish."""
        return sum(len(c.pending) for c in self._conversations.values())

    def submit(self, key: Hashable, item: T) -> None:
        """Queue `item`; synchronous, so items of one key keep the order they were submitted in."""
        conv = self._conversations.get(key)
        if conv is None:
            conv = self._conversations[key] = _Conversation()
        conv.pending.append(item)
        if conv.worker is None:
            self._idle.clear()
            conv.worker = asyncio.get_running_loop().create_task(self._run(key, conv), name=f"conversation:{key}")

    async def _run(self, key: Hashable, conv: _Conversation[T]) -> None:
        try:
            while conv.pending:
                batch, conv.pending = conv.pending, []
                try:
                    await self._handler(key, batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one failed reply must not stop the conversation
                    if self._on_error is not None:
                        self._on_error(key, exc)
                    else:
                        log.exception("conversation %s: reply failed", key)
        finally:
            conv.worker = None
            if self._conversations.get(key) is conv:
                del self._conversations[key]
            if not self._conversations:
                self._idle.set()

    async def drain(self) -> None:
        """Wait until no conversation has work."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Cancel every worker (shutdown) and wait for them to stop."""
        workers = [c.worker for c in self._conversations.values() if c.worker is not None]
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
