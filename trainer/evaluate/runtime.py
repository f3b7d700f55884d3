"""The gate's real measurements: held-out loss with transformers, probes on a real backend.

- `loss_fn(settings)`: the mean assistant-token loss (`trainer.finetune.heldout.evaluate_loss`,
  computed exactly like the training loss) of the base model, or the base plus a version's LoRA
  adapter, on a validation JSONL, in a worker thread. An OpenAI version cannot be measured
  locally: its training job's own validation loss (`metrics["val_loss"]`) stands in, and its
  base model's loss is unknown (None), which the gate reports as a skipped comparison.
- `backend_factory(settings)`: the backend the probes talk to. A LoRA version runs in-process on
  the persona's base model (`LocalBackend` + the adapter), whatever serves it in production, so a
  candidate is judged before any server sees it. An OpenAI version is asked through the API.
  `None` is the base model itself (the baseline when nothing is active): loaded in-process for a
  local or vLLM persona, asked through the API for an OpenAI one.
- `judge_factory(settings)`: the judge a spec names: "openai:MODEL" / "vllm:MODEL" through the
  openai SDK with the OPENAI_/VLLM_ settings, "local" (the persona's base model) or "local:MODEL"
  (a folder, .gguf or the embedded model) as a `LikelihoodJudge`.
- `role_check(settings)`: the role-confusion check on the persona's base model (`roles.RoleChecker`).

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
from trainer.evaluate.gate import BackendFactory, JudgeFactory, LossFn, RoleCheck


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
        return await asyncio.to_thread(evaluate_loss, base, adapter, val, system_prompt=persona.offline_system_prompt,
                                       max_length=persona.training.max_length, device=settings.core.local_device)

    return loss


def backend_factory(settings: Settings) -> BackendFactory:
    @asynccontextmanager
    async def open_backend(persona: PersonaSpec, version: ModelVersion | None):
        backend: Backend
        if version is None:
            if persona.model.backend in ("openai", "vllm"):
                from bot.backends.openai_compat import openai_compat_from_settings

                kind = persona.model.backend
                backend = openai_compat_from_settings(settings.openai if kind == "openai" else settings.vllm, kind=kind,
                                                      model=persona.model.model, base_url=persona.model.base_url,
                                                      api_key_env=persona.model.api_key_env)
            else:
                from bot.backends.local import LocalBackend

                backend = await asyncio.to_thread(LocalBackend.load, _base_dir(settings, persona, None),
                                                  device=settings.core.local_device)
        elif version.backend == "openai":
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


def _load_local(settings: Settings, folder: Path):
    from bot.backends.local import LocalBackend

    return LocalBackend.load(folder, device=settings.core.local_device)


def judge_factory(settings: Settings) -> JudgeFactory:
    @asynccontextmanager
    async def open_judge(persona: PersonaSpec, spec: str):
        kind, _, model = spec.partition(":")
        if kind in ("openai", "vllm"):
            import openai

            from trainer.evaluate.judge import OpenAIJudge

            section = settings.openai if kind == "openai" else settings.vllm
            api_key = section.api_key or ("EMPTY" if kind == "vllm" else None)
            if not api_key:
                raise RuntimeError(f"judge {spec} needs an API key: set OPENAI_API_KEY")
            client = openai.AsyncOpenAI(base_url=section.base_url, api_key=api_key, timeout=section.timeout_s,
                                        max_retries=section.max_retries)
            judge = OpenAIJudge(client, model, name=spec)
            try:
                yield judge
            finally:
                await judge.aclose()
            return
        from bot.backends.local_models import resolve_model
        from trainer.evaluate.judge import LikelihoodJudge

        folder = resolve_model(model, settings.core.models_dir) if model else _base_dir(settings, persona, None)
        backend = await asyncio.to_thread(_load_local, settings, folder)
        try:
            yield LikelihoodJudge(backend.model, backend.tokenizer, name=spec)
        finally:
            await backend.aclose()

    return open_judge


def role_check(settings: Settings) -> RoleCheck:
    async def check(persona: PersonaSpec, cases: list[tuple[list[dict], str]]) -> list[bool]:
        from trainer.evaluate.roles import RoleChecker

        if persona.model.backend == "openai":
            raise RuntimeError("the role-confusion check needs the base model's weights; an OpenAI base model has none here")
        backend = await asyncio.to_thread(_load_local, settings, _base_dir(settings, persona, None))
        try:
            return await RoleChecker(backend.model, backend.tokenizer).flag(persona, cases)
        finally:
            await backend.aclose()

    return check
