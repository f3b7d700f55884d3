"""Model backends: one streaming interface (`Backend.stream`), three implementations.

- `openai_compat.OpenAICompatBackend`: OpenAI and vLLM (a LoRA adapter is chosen by model name).
- `local.LocalBackend`: transformers (+ peft adapters) in-process, streaming from a worker thread.
- `pool.BackendPool`: builds and shares backends per persona, so HTTP clients and weights are reused.

Backends never touch the database; the caller logs results.
"""
from bot.backends.base import (
    Backend,
    BackendAuthError,
    BackendError,
    BackendNotFoundError,
    BackendTimeoutError,
    GenerationParams,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendAuthError",
    "BackendNotFoundError",
    "BackendTimeoutError",
    "GenerationParams",
]
