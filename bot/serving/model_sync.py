"""Route each persona to its registry's active version: at start-up, and on every promotion or
rollback, without a restart and without dropping a reply.

Contract:

- `await sync.start()` applies every persona's active version once. It also re-registers every
  active vLLM adapter (`load_lora_adapter`, already-loaded is fine), because vLLM forgets adapters
  loaded at runtime whenever it restarts.
- `await sync.sync()` compares the registry's active versions with what is routed now and applies
  only the differences. It is one indexed query, so the bot polls it (`run()`, every `interval_s`):
  promotion happens in another process (`personabot trainer` / `model promote`), which only writes
  the registry, and the bot follows within one interval. `notify()` wakes the loop at once, for a
  scheduler running inside the bot.
- How a version is served (`serving_model`):
  - an OpenAI fine-tune: the persona's model id is switched;
  - a LoRA adapter on a vLLM persona: the adapter is loaded on the server under its immutable
    versioned name, then routing switches to that name. A stream already running keeps the backend
    it started with, so it finishes on the old adapter; the promoter unloads the old adapter after
    a grace period longer than this loop's interval;
  - a LoRA adapter on a local persona: the persona gets its own in-process backend (one model has
    one active adapter, so it cannot be shared with other personas), the new adapter is loaded
    beside the old one, made active, and the old one unloaded. The local backend switches adapters
    between generations, so a reply in progress finishes on the old version and the next reply uses
    the new one;
  - no active version: the persona's own spec answers.
- A version that cannot be applied (vLLM unreachable or refusing, adapter folder missing, a LoRA
  version for an OpenAI persona) leaves the previous routing in place. The error is logged, kept
  in `state()`, and the next sync tries again.

Blocking adapter calls of the local backend run in a worker thread, so the event loop keeps
serving other conversations while weights load.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol

import aiosqlite

from bot.backends.base import Backend, BackendError
from bot.backends.pool import BackendPool
from bot.persona.spec import ModelSpec, PersonaSpec
from bot.store import registry
from bot.store.registry import ModelVersion

log = logging.getLogger(__name__)


class UnservableVersion(ValueError):
    """The active version cannot be served by this persona's backend (the message says why)."""


class AdapterAdmin(Protocol):
    """What model sync needs from a LoRA server (implemented by `bot.backends.vllm_admin.VLLMAdmin`)."""

    async def load_adapter(self, name: str, path: str | Path, *, exist_ok: bool = False) -> None: ...

    async def unload_adapter(self, name: str, *, missing_ok: bool = False) -> None: ...

    async def aclose(self) -> None: ...


AdminFactory = Callable[[str, "str | None"], AdapterAdmin]


def vllm_admin(base_url: str, api_key: str | None) -> AdapterAdmin:
    """The default admin factory: vLLM's runtime LoRA endpoints."""
    from bot.backends.vllm_admin import VLLMAdmin

    return VLLMAdmin(base_url, api_key)


def admin_endpoint(model: ModelSpec, settings) -> tuple[str, str | None]:
    """(base URL, API key) of the vLLM server that serves `model`."""
    section = settings.vllm
    api_key = os.environ.get(model.api_key_env) if model.api_key_env else section.api_key
    return model.base_url or section.base_url, api_key


def serving_model(persona: PersonaSpec, version: ModelVersion) -> ModelSpec:
    """The model spec that serves `version` for `persona` (raises UnservableVersion)."""
    spec = persona.model
    if version.backend == "openai":
        if not version.remote_model:
            raise UnservableVersion(f"{version.name} has no fine-tuned OpenAI model id yet (its job may not have finished)")
        same = spec.backend == "openai"
        return ModelSpec(backend="openai", model=version.remote_model,
                         base_url=spec.base_url if same else None, api_key_env=spec.api_key_env if same else None)
    if not version.adapter_path:
        raise UnservableVersion(f"{version.name} has no adapter folder recorded in the registry")
    if spec.backend == "vllm":
        return spec.model_copy(update={"adapter": version.name})
    if spec.backend == "local":
        return spec.model_copy(update={"adapter": version.adapter_path})
    raise UnservableVersion(
        f"{version.name} is a LoRA adapter, but persona {persona.name!r} is served by OpenAI, which cannot load "
        "adapters: set [model] backend to 'vllm' or 'local' in its persona.toml"
    )


def _adapter_capable(backend: Backend) -> bool:
    return all(callable(getattr(backend, m, None)) for m in ("load_adapter", "set_adapter", "unload_adapter"))


@dataclass(frozen=True)
class SyncResult:
    """What one sync did for one persona."""

    persona: str
    version: str | None          # the active version now routed (None: the spec's own model)
    model: ModelSpec | None      # what serves it (None: the spec)
    error: str | None = None     # why the version could not be applied (routing unchanged)


@dataclass
class _OwnLocal:
    """A persona's own in-process backend and the adapter it has active."""

    backend: Backend
    adapter: str | None


class ModelSync:
    """Keeps a `BackendPool` routed to the registry's active versions. One per bot process."""

    def __init__(self, db: aiosqlite.Connection, pool: BackendPool, personas: Mapping[str, PersonaSpec], *,
                 admin_factory: AdminFactory | None = None, interval_s: float = 10.0):
        self._db = db
        self._pool = pool
        self._personas = dict(personas)
        self._admin_factory = admin_factory or vllm_admin
        self.interval_s = interval_s
        self._routed: dict[str, str | None] = {}
        self._errors: dict[str, str] = {}
        self._own_local: dict[str, _OwnLocal] = {}
        self._admins: dict[tuple[str, str | None], AdapterAdmin] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._seen: set[str] = set()

    # -- public ---------------------------------------------------------------------------------

    async def start(self) -> list[SyncResult]:
        """Apply every persona's active version and re-register vLLM adapters (call at start-up)."""
        return await self.sync(reregister=True)

    async def sync(self, *, reregister: bool = False) -> list[SyncResult]:
        """Apply what changed in the registry since the last sync (everything with `reregister`)."""
        async with self._lock:
            active = await registry.active_versions(self._db)
            results = []
            for name, persona in self._personas.items():
                version = active.get(name)
                wanted = version.name if version else None
                if not reregister and name in self._routed and self._routed[name] == wanted:
                    continue
                results.append(await self._apply(persona, version))
            return results

    def notify(self) -> None:
        """Sync now instead of at the next interval (a promotion just happened in this process)."""
        self._wake.set()

    async def run(self) -> None:
        """Poll the registry until cancelled. Errors are logged; the loop keeps going."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.sync()
            except Exception:  # a locked or briefly unavailable database must not stop serving
                log.exception("model sync failed; retrying in %.0fs", self.interval_s)

    def state(self) -> dict[str, dict]:
        """Per persona: the version routed now and the last error applying a newer one (for /admin status)."""
        return {name: {"version": self._routed.get(name), "error": self._errors.get(name)} for name in self._personas}

    async def aclose(self) -> None:
        """Close the admin clients (the pool, which owns the backends, is closed by its owner)."""
        for admin in self._admins.values():
            await admin.aclose()
        self._admins.clear()

    # -- applying one persona ---------------------------------------------------------------------

    async def _apply(self, persona: PersonaSpec, version: ModelVersion | None) -> SyncResult:
        wanted = version.name if version else None
        try:
            model = await self._route(persona, version)
        except (UnservableVersion, BackendError, OSError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            self._errors[persona.name] = message
            log.error("persona %s: cannot serve %s, keeping %s: %s", persona.name, wanted or "its spec model",
                      self._routed.get(persona.name) or "its current model", message)
            return SyncResult(persona.name, self._routed.get(persona.name), None, message)
        first = persona.name not in self._routed
        changed = first or self._routed[persona.name] != wanted
        self._routed[persona.name] = wanted
        self._errors.pop(persona.name, None)
        if changed:
            # Routing to the spec's own model is the default at start-up: not worth a line.
            log.log(logging.INFO if wanted or persona.name in self._seen else logging.DEBUG,
                    "persona %s is now served by %s", persona.name, wanted or "its spec model")
        self._seen.add(persona.name)
        if changed and not first:
            # Build the new backend now, in a worker thread, rather than on the next message (at
            # start-up the bot builds every persona's backend before connecting).
            try:
                await self._pool.prepare(persona)
            except Exception as exc:  # logged; the first message retries the build
                log.error("persona %s: building the backend for %s failed: %s: %s", persona.name,
                          wanted or "its spec model", type(exc).__name__, exc)
        return SyncResult(persona.name, wanted, model)

    async def _route(self, persona: PersonaSpec, version: ModelVersion | None) -> ModelSpec | None:
        if version is None:
            if persona.name in self._own_local:
                spec_adapter = persona.model.adapter
                name = Path(spec_adapter).name if spec_adapter else None
                await self._switch_local(persona, name, spec_adapter)
            self._pool.set_model_override(persona.name, None)
            return None
        model = serving_model(persona, version)
        if model.backend != "local" and persona.name in self._own_local:
            # Leaving its own in-process model for a remote one: route through the pool again.
            own = self._own_local.pop(persona.name)
            self._pool.unpin(persona.name)
            await own.backend.aclose()
        if model.backend == "vllm":
            await self._admin_for(model).load_adapter(version.name, version.adapter_path, exist_ok=True)
        elif model.backend == "local":
            await self._switch_local(persona, version.name, version.adapter_path)
        self._pool.set_model_override(persona.name, model)
        return model

    async def _switch_local(self, persona: PersonaSpec, name: str | None, path: str | None) -> None:
        """Load `name` beside the active adapter of the persona's own backend, switch, unload the old."""
        own = self._own_local.get(persona.name)
        if own is None:
            if name is None:
                return
            if path is None or not (Path(path) / "adapter_config.json").is_file():
                raise UnservableVersion(f"no LoRA adapter (adapter_config.json) in {path}")
            base = persona.model.model_copy(update={"adapter": None})
            factory = self._pool.factories["local"]
            backend = await asyncio.to_thread(factory, base, self._pool.settings)
            if not _adapter_capable(backend):
                raise UnservableVersion(f"the local backend for {persona.name!r} cannot load adapters")
            own = self._own_local[persona.name] = _OwnLocal(backend, None)
            # From now on this persona is served by its own backend, whichever adapter is active.
            self._pool.pin(persona.name, backend)
        if own.adapter == name:
            return
        old = own.adapter
        if name is not None:
            await asyncio.to_thread(own.backend.load_adapter, name, path)
        # Waits for a generation in progress: it finishes on the old adapter.
        await asyncio.to_thread(own.backend.set_adapter, name)
        own.adapter = name
        if old is not None:
            await asyncio.to_thread(own.backend.unload_adapter, old)

    def _admin_for(self, model: ModelSpec) -> AdapterAdmin:
        key = admin_endpoint(model, self._pool.settings)
        if key not in self._admins:
            self._admins[key] = self._admin_factory(*key)
        return self._admins[key]
