"""Stand-ins at the backend seam for serving and promotion tests.

- `AdapterBackend`: a scripted backend with the local backend's adapter API (`load_adapter`,
  `set_adapter`, `unload_adapter`; `model_name` is `<base>+<adapter>`). Like the real one it
  switches adapters only between generations: `set_adapter` (called from a worker thread) waits
  for running streams to finish. Each reply says which adapter produced it; `hold()` pauses the
  next stream after its first chunk until `release()`.
- `RecordingAdmin`: the vLLM adapter admin API, recording calls and failing on request.
- `make_adapter(path)`: a folder that looks like a peft adapter.
"""
from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import AsyncIterator

from bot.backends.base import Backend, BackendError, BackendNotFoundError, GenerationParams


def make_adapter(path: Path, rank: int = 8) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}), encoding="utf-8")
    return path


class AdapterBackend(Backend):
    kind = "fake-local"

    def __init__(self, base: str = "base", *, replies: dict[str | None, str] | None = None):
        self.base = base
        self.replies = dict(replies or {})       # adapter (None: base) -> reply text
        self.adapters: dict[str, str] = {}
        self.active: str | None = None
        self.log: list[str] = []                # load/set/unload calls, in order
        self._running = 0
        self._idle = threading.Condition()
        self._hold: asyncio.Event | None = None      # armed for the next stream
        self._holding: asyncio.Event | None = None   # the one a stream is waiting on
        self.held = asyncio.Event()             # set when a held stream has sent its first chunk

    @property
    def model_name(self) -> str:
        return self.base if self.active is None else f"{self.base}+{self.active}"

    def reply_for(self, adapter: str | None) -> str:
        return self.replies.get(adapter, f"Reply from {adapter or self.base}. Anything else?")

    def hold(self) -> None:
        self._hold = asyncio.Event()
        self.held.clear()

    def release(self) -> None:
        for event in (self._hold, self._holding):
            if event is not None:
                event.set()

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        with self._idle:
            self._running += 1
            adapter = self.active
        try:
            words = self.reply_for(adapter).split(" ")
            for i, word in enumerate(words):
                yield word if i == 0 else " " + word
                if i == 0 and self._hold is not None:
                    self._holding, self._hold = self._hold, None
                    self.held.set()
                    await self._holding.wait()
                await asyncio.sleep(0)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    # -- the local backend's adapter API (blocking; called through asyncio.to_thread) --

    def load_adapter(self, name: str, path: str | Path) -> None:
        if not (Path(path) / "adapter_config.json").is_file():
            raise BackendNotFoundError(f"no peft adapter (adapter_config.json) in {path}")
        self.adapters[name] = str(path)
        self.log.append(f"load {name}")

    def set_adapter(self, name: str | None) -> None:
        if name is not None and name not in self.adapters:
            raise BackendNotFoundError(f"adapter {name!r} is not loaded")
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0, timeout=10)
            self.active = name
        self.log.append(f"set {name}")

    def unload_adapter(self, name: str) -> None:
        del self.adapters[name]
        if self.active == name:
            self.active = None
        self.log.append(f"unload {name}")


class RecordingAdmin:
    """vLLM's runtime LoRA API as model sync and promotion use it."""

    def __init__(self):
        self.loaded: dict[str, str] = {}
        self.calls: list[tuple] = []
        self.fail_next: BackendError | None = None
        self.closed = False

    async def load_adapter(self, name, path, *, exist_ok=False):
        self.calls.append(("load", name, str(path), exist_ok))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if name in self.loaded and not exist_ok:
            raise BackendError(f"adapter {name} already loaded")
        self.loaded[name] = str(path)

    async def unload_adapter(self, name, *, missing_ok=False):
        self.calls.append(("unload", name, missing_ok))
        if name not in self.loaded and not missing_ok:
            raise BackendNotFoundError(f"adapter {name} not loaded")
        self.loaded.pop(name, None)

    async def aclose(self):
        self.closed = True


class ScriptedFactory:
    """A `BackendPool` factory: local specs get an `AdapterBackend`, others a backend answering as their model."""

    def __init__(self, base: str = "base"):
        self.base = base
        self.built: list[tuple] = []   # (spec, backend)

    def __call__(self, spec, settings) -> Backend:
        from tests.support.scripted_backend import ScriptedBackend

        if spec.backend == "local":
            backend = AdapterBackend(self.base)
        else:
            served = spec.adapter or spec.model
            backend = ScriptedBackend(served, default=[f"Reply from {served}."])
        self.built.append((spec, backend))
        return backend
