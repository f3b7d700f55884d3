"""A scripted model backend: `enqueue(["Hel", "lo"])` queues one streamed reply.

It stands in for models at the backend seam (the engine, Discord and trainer tests); the wire-level
fakes in this folder stand in for OpenAI/vLLM and Discord themselves.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator, Callable

from bot.backends.base import Backend, BackendError, GenerationParams


class ScriptedBackend(Backend):
    kind = "scripted"

    def __init__(self, model: str = "scripted", *, default: list[str] | None = None, delay_s: float = 0.0):
        self._model = model
        self._queue: deque = deque()
        self.default = default            # reply when the queue is empty (None → raise)
        self.delay_s = delay_s            # pause between chunks, to exercise streaming edits
        self.calls: list[tuple[list[dict], GenerationParams]] = []
        self.responder: Callable[[list[dict]], list[str]] | None = None

    @property
    def model_name(self) -> str:
        return self._model

    def enqueue(self, chunks: list[str] | str | Exception) -> None:
        self._queue.append([chunks] if isinstance(chunks, str) else chunks)

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        self.calls.append(([dict(m) for m in messages], params))
        if self._queue:
            item = self._queue.popleft()
        elif self.responder is not None:
            item = self.responder(messages)
        elif self.default is not None:
            item = self.default
        else:
            raise BackendError("scripted backend has nothing queued")
        if isinstance(item, Exception):
            raise item
        for chunk in item:
            if isinstance(chunk, Exception):
                raise chunk
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield chunk
