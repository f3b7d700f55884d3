"""Builds and shares backends per persona.

One backend instance per distinct endpoint (backend kind, base URL, model/adapter), so personas on
the same server share one HTTP connection pool and a local model is loaded once. The registry's
active version (hot-swap) is applied with `set_model_override`; tests and embedders can pin a
backend for a persona with `pin`.
"""
from __future__ import annotations

from typing import Callable

from bot.backends.base import Backend
from bot.persona.spec import ModelSpec, PersonaSpec
from bot.settings import Settings

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

    def for_persona(self, persona: PersonaSpec) -> Backend:
        if persona.name in self._pinned:
            return self._pinned[persona.name]
        model = self.model_spec(persona)
        key = (model.backend, model.base_url, model.model, model.adapter, model.api_key_env)
        backend = self._by_endpoint.get(key)
        if backend is None:
            backend = self.factories[model.backend](model, self.settings)
            self._by_endpoint[key] = backend
        return backend

    def backends(self) -> list[Backend]:
        return list({id(b): b for b in [*self._by_endpoint.values(), *self._pinned.values()]}.values())

    async def aclose(self) -> None:
        for backend in self.backends():
            await backend.aclose()
        self._by_endpoint.clear()
        self._pinned.clear()
