"""The backend contract.

A backend turns chat messages (`[{"role": ..., "content": ...}]`, system prompt first) into a stream
of text deltas. It applies the stop sequences it is given when it can, but the engine applies them
again, so a backend that cannot is still correct. Errors are `BackendError` subclasses whose
messages never contain conversation content (they end up in application logs).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import AsyncIterator


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 256
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None


class BackendError(RuntimeError):
    """A generation failed. `retryable` says whether trying again later might help."""

    retryable = True


class BackendAuthError(BackendError):
    """401/403: the key is missing, wrong, or lacks access. Not retried."""

    retryable = False


class BackendNotFoundError(BackendError):
    """404: unknown model or adapter name, or wrong base URL. Not retried."""

    retryable = False


class BackendTimeoutError(BackendError):
    """No answer within the timeout after all retries."""


class Backend(abc.ABC):
    """One model endpoint. Instances are shared across conversations and must be concurrency-safe."""

    #: Human-readable description of what serves the model (for /admin status and logs).
    kind: str = "backend"

    @property
    @abc.abstractmethod
    def model_name(self) -> str:
        """The model (or adapter) currently answering; recorded with each logged reply."""

    @abc.abstractmethod
    def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        """Yield text deltas of the assistant's reply. Raise BackendError on failure."""

    def count_tokens(self, messages: list[dict]) -> int | None:
        """Tokens the chat template makes of `messages` with the model's own tokenizer, or None if unknown."""
        return None

    async def health(self) -> str:
        """A short status line; raise BackendError when unreachable."""
        return "ok"

    async def aclose(self) -> None:
        """Release HTTP clients, threads or weights."""
