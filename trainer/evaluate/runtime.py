"""The gate's real measurements: held-out loss with transformers, probes on a real backend.

- `loss_fn(settings)`: the mean assistant-token loss (`trainer.finetune.heldout.evaluate_loss`,
  computed exactly like the training loss) of the base model, or the base plus a version's LoRA
  adapter, on a validation JSONL, in a worker thread. An OpenAI version cannot be measured
  locally: its training job's own validation loss (`metrics["val_loss"]`) stands in, and its
  base model's loss is unknown (None), which the gate reports as a skipped comparison.
- `backend_factory(settings)`: the backend the probes talk to. A LoRA version runs in-process on
  the persona's base model (`LocalBackend` + the adapter), whatever serves it in production, so a
  candidate is judged before any server sees it. An OpenAI version is asked through the API.

Heavy libraries are imported inside these functions only.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from bot.backends.base import Backend
from bot.persona.spec import PersonaSpec
from bot.settings import Settings
from bot.store.registry import ModelVersion
from trainer.evaluate.gate import BackendFactory, LossFn


def _base_dir(settings: Settings, persona: PersonaSpec, version: ModelVersion | None) -> Path:
    from trainer.finetune.runner import resolve_base_model

    base = version.base_model if version is not None else persona.model.model
    if base != persona.model.model:
        persona = persona.model_copy(update={"model": persona.model.model_copy(update={"model": base})})
    return resolve_base_model(settings, persona)


def loss_fn(settings: Settings) -> LossFn:
    async def loss(persona: PersonaSpec, version: ModelVersion | None, val: Path) -> float | None:
        if version is not None and version.backend == "openai":
            recorded = version.metrics.get("val_loss")
            return float(recorded) if isinstance(recorded, (int, float)) else None
        if version is None and persona.model.backend == "openai":
            return None    # an OpenAI base model has no weights here to measure
        from trainer.finetune.heldout import evaluate_loss

        base = _base_dir(settings, persona, version)
        adapter = version.adapter_path if version is not None else None
        return await asyncio.to_thread(evaluate_loss, base, adapter, val, system_prompt=persona.system_prompt,
                                       max_length=persona.training.max_length, device=settings.core.local_device)

    return loss


def backend_factory(settings: Settings) -> BackendFactory:
    @asynccontextmanager
    async def open_backend(persona: PersonaSpec, version: ModelVersion):
        backend: Backend
        if version.backend == "openai":
            from bot.backends.openai_compat import openai_compat_from_settings

            same = persona.model.backend == "openai"
            backend = openai_compat_from_settings(settings.openai, kind="openai", model=version.served_model,
                                                  base_url=persona.model.base_url if same else None,
                                                  api_key_env=persona.model.api_key_env if same else None)
        else:
            from bot.backends.local import LocalBackend

            if not version.adapter_path or not (Path(version.adapter_path) / "adapter_config.json").is_file():
                raise FileNotFoundError(f"no LoRA adapter (adapter_config.json) in {version.adapter_path}")
            base = _base_dir(settings, persona, version)
            backend = await asyncio.to_thread(LocalBackend.load, base, device=settings.core.local_device)
            await asyncio.to_thread(backend.load_adapter, version.name, version.adapter_path)
            await asyncio.to_thread(backend.set_adapter, version.name)
        try:
            yield backend
        finally:
            await backend.aclose()

    return open_backend
