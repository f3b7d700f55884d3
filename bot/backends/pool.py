"""Builds and shares backends per persona.

One backend instance per distinct endpoint (backend kind, base URL, model/adapter), so personas on
the same server share one HTTP connection pool and a local model is loaded once. The registry's
active version (hot-swap) is applied with `set_model_override`; tests and embedders can pin a
backend for a persona with `pin`.

Building a backend can take a minute (a local model is fetched and converted on first use), so the
serving side builds them with `prepare`/`prepare_all`, in a worker thread, before connecting and
whenever the routing changes; `for_persona` then only looks them up.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Callable

from bot.backends.base import Backend
from bot.persona.spec import ModelSpec, PersonaSpec
from bot.settings import Settings

log = logging.getLogger(__name__)

Factory = Callable[[ModelSpec, Settings], Backend]


def _openai_compat(model: ModelSpec, settings: Settings) -> Backend:
    from bot.backends.openai_compat import openai_compat_from_settings

    section = settings.openai if model.backend == "openai" else settings.vllm
    # vLLM serves a LoRA adapter under its own model name.
    return openai_compat_from_settings(section, kind=model.backend, model=model.adapter or model.model,
                                       base_url=model.base_url, api_key_env=model.api_key_env)


def _local(model: ModelSpec, settings: Settings) -> Backend:
    from bot.backends.local import LocalBackend

    return LocalBackend.from_spec(model, settings)


DEFAULT_FACTORIES: dict[str, Factory] = {"openai": _openai_compat, "vllm": _openai_compat, "local": _local}


class BackendPool:
    def __init__(self, settings: Settings, factories: dict[str, Factory] | None = None):
        self.settings = settings
        self.factories = dict(DEFAULT_FACTORIES, **(factories or {}))
        self._by_endpoint: dict[tuple, Backend] = {}
        self._pinned: dict[str, Backend] = {}
        self._overrides: dict[str, ModelSpec] = {}
        self._build_lock = asyncio.Lock()         # one build at a time (a model load takes the CPU)

    def model_spec(self, persona: PersonaSpec) -> ModelSpec:
        """The persona's model, with the registry's active version applied."""
        return self._overrides.get(persona.name, persona.model)

    def set_model_override(self, persona_name: str, model: ModelSpec | None) -> None:
        """Route a persona to another model/adapter (promotion, rollback); None restores its spec."""
        if model is None:
            self._overrides.pop(persona_name, None)
        else:
            self._overrides[persona_name] = model

    def pin(self, persona_name: str, backend: Backend) -> None:
        """Serve a persona from this backend whatever its spec says (tests, a persona's own local model)."""
        self._pinned[persona_name] = backend

    def unpin(self, persona_name: str) -> Backend | None:
        """Undo `pin`; returns the backend that was pinned (its owner closes it when done)."""
        return self._pinned.pop(persona_name, None)

    @staticmethod
    def _key(model: ModelSpec) -> tuple:
        return (model.backend, model.base_url, model.model, model.adapter, model.api_key_env)

    def for_persona(self, persona: PersonaSpec) -> Backend:
        if persona.name in self._pinned:
            return self._pinned[persona.name]
        model = self.model_spec(persona)
        key = self._key(model)
        backend = self._by_endpoint.get(key)
        if backend is None:
            backend = self.factories[model.backend](model, self.settings)
            self._by_endpoint[key] = backend
        return backend

    def built(self, persona: PersonaSpec) -> Backend | None:
        """The persona's backend if it is built already; never builds (for status pages)."""
        if persona.name in self._pinned:
            return self._pinned[persona.name]
        return self._by_endpoint.get(self._key(self.model_spec(persona)))

    async def prepare(self, persona: PersonaSpec) -> Backend:
        """The persona's backend, built in a worker thread if it isn't yet (a local model may be
        fetched and converted for a minute): the event loop never waits on a build."""
        backend = self.built(persona)
        if backend is not None:
            return backend
        async with self._build_lock:
            backend = self.built(persona)
            if backend is None:
                model = self.model_spec(persona)
                log.info("building the %s backend for %s (model %s) in a worker thread", model.backend, persona.name,
                         model.adapter or model.model)
                started = time.monotonic()
                # A full garbage collection holds the GIL, and a model load allocates enough to set
                # one off: with the process's long-lived objects (modules, loaded models) frozen out
                # of the collector's sight, it scans only what is new and stays short instead of
                # stalling the event loop for most of a second.
                gc.freeze()
                backend = await asyncio.to_thread(self.factories[model.backend], model, self.settings)
                gc.freeze()
                self._by_endpoint.setdefault(self._key(model), backend)
                backend = self._by_endpoint[self._key(model)]
                log.info("backend for %s ready in %.1f s", persona.name, time.monotonic() - started)
        return backend

    async def prepare_all(self, personas) -> None:
        """Build every persona's backend before serving (start-up, spec or registry change). A
        persona whose backend fails is logged and retried on its first message."""
        for persona in personas:
            try:
                await self.prepare(persona)
            except Exception as exc:
                log.error("backend for persona %s failed to build: %s: %s", persona.name, type(exc).__name__, exc)

    def backends(self) -> list[Backend]:
        return list({id(b): b for b in [*self._by_endpoint.values(), *self._pinned.values()]}.values())

    async def aclose(self) -> None:
        for backend in self.backends():
            await backend.aclose()
        self._by_endpoint.clear()
        self._pinned.clear()
