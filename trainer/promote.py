"""Promotion and rollback: make a version the persona's active one, safely for each way of serving.

Contract:

- `promote(db, settings, persona, name=None)` promotes `name`, or the newest candidate that passed
  the gate. Without `force` it refuses a version that has not passed the gate, is tainted (trained
  on data a member asked to forget), or whose training failed.
- Serving is prepared *before* the registry switches, so a refusal changes nothing:
  - vLLM: the adapter is loaded under its immutable versioned name
    (`POST /v1/load_lora_adapter`); a server that refuses (runtime loading disabled, rank above
    `--max-lora-rank`, path not found) aborts the promotion with the server's reason;
  - OpenAI: the fine-tuned model id must exist (`GET /v1/models/{id}`);
  - local: the adapter folder must hold `adapter_config.json`.
- Then the registry switches (one transaction); the running bot's `ModelSync` follows within its
  poll interval (or at once, via `on_switched`, when it runs in this process). The local backend
  loads the new adapter beside the old one and switches; OpenAI/vLLM switch the model name.
- The old vLLM adapter stays loaded for a grace period, for replies still streaming from it and
  for the bot's next poll; `unload_after_grace(...)` unloads it (the caller awaits it or runs it in
  the background). Reloading a name can serve stale weights in vLLM, so names are never reused.
- `rollback(db, settings, persona, to=None)` goes back to `to`, or to the version that served
  before the current one (tainted versions are skipped unless named with `force`), or, when there
  is none, to the persona's spec model. It prepares serving the same way.

Every failure is a `PromotionError` whose message says what to fix; registry events record
promotions, rollbacks and unloads.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import aiosqlite

from bot.backends.base import BackendError
from bot.persona.spec import PersonaSpec
from bot.serving.model_sync import AdminFactory, UnservableVersion, admin_endpoint, serving_model, vllm_admin
from bot.settings import Settings
from bot.store import registry
from bot.store.registry import ModelVersion
from trainer.evaluate.gate import gate_passed

log = logging.getLogger(__name__)

#: Seconds the old vLLM adapter stays loaded after a switch. Longer than the bot's sync interval
#: (10 s) plus the longest reply, so no request is routed to an unloaded name.
DEFAULT_GRACE_S = 120.0

Switched = Callable[[PersonaSpec, "ModelVersion | None"], Awaitable[None]]


class PromotionError(RuntimeError):
    """Promotion or rollback refused or failed; nothing changed in the registry."""


@dataclass(frozen=True)
class PromotionResult:
    persona: str
    version: str | None        # now active (None: the spec's own model)
    previous: str | None       # was active before
    action: str                # promoted | rolled_back
    unload_pending: str | None = None   # vLLM adapter to unload after the grace period

    def summary(self) -> str:
        now = self.version or "its spec model (no fine-tune)"
        verb = "promoted" if self.action == "promoted" else "rolled back"
        text = f"{self.persona}: {verb} to {now}" + (f" (was {self.previous})" if self.previous else "")
        if self.unload_pending:
            text += f"; the old adapter {self.unload_pending} is unloaded from vLLM after a grace period"
        return text


async def newest_promotable(db: aiosqlite.Connection, persona: str) -> ModelVersion | None:
    """The newest candidate that passed the gate, untainted."""
    for v in reversed(await registry.list_versions(db, persona)):
        if v.status == "candidate" and not v.tainted and gate_passed(v):
            return v
    return None


async def promote(
    db: aiosqlite.Connection, settings: Settings, persona: PersonaSpec, name: str | None = None, *,
    force: bool = False, admin_factory: AdminFactory | None = None, on_switched: Switched | None = None,
    by: str | None = None,
) -> PromotionResult:
    """Make `name` (default: the newest candidate that passed the gate) the persona's active version.

    `by` (a Discord user id, 'cli:<name>', 'scheduler') is recorded with the promotion event."""
    if name is None:
        version = await newest_promotable(db, persona.name)
        if version is None:
            raise PromotionError(f"{persona.name} has no candidate that passed the gate "
                                 f"(run `personabot eval --persona {persona.name}`, or name a version)")
    else:
        version = await _get(db, persona, name)
    if version.status == "active":
        raise PromotionError(f"{version.name} is already {persona.name}'s active version")
    if version.status in ("training", "failed") and not (force and version.status == "failed" and _gate_rejected(version)):
        why = version.status_reason or version.status
        raise PromotionError(f"{version.name} cannot be promoted: {why}")
    if not force:
        if version.tainted:
            raise PromotionError(f"{version.name} is tainted ({version.tainted_reason}); retrain without that data, "
                                 "or pass --force to serve it anyway")
        if not gate_passed(version):
            raise PromotionError(f"{version.name} has not passed the evaluation gate "
                                 f"(run `personabot eval --persona {persona.name} --version {version.name}`), "
                                 "or pass --force")
    previous = await registry.active_version(db, persona.name)
    await prepare_serving(settings, persona, version, admin_factory=admin_factory)
    detail = "; ".join(d for d in (f"by {by}" if by else None,
                                     "forced past the gate" if force and not gate_passed(version) else None) if d) or None
    await registry.set_active(db, version.name, event="promoted", detail=detail)
    log.info("%s: promoted %s (was %s)", persona.name, version.name, previous.name if previous else "the spec model")
    if on_switched is not None:
        await on_switched(persona, version)
    return PromotionResult(persona.name, version.name, previous.name if previous else None, "promoted",
                           _unload_pending(persona, previous, version))


async def rollback(
    db: aiosqlite.Connection, settings: Settings, persona: PersonaSpec, to: str | None = None, *,
    force: bool = False, admin_factory: AdminFactory | None = None, on_switched: Switched | None = None,
) -> PromotionResult:
    """Go back to `to`, else the version that served before the current one, else the spec model."""
    current = await registry.active_version(db, persona.name)
    if to is not None:
        target = await _get(db, persona, to)
        if current is not None and target.name == current.name:
            raise PromotionError(f"{target.name} is already active")
        if target.status in ("training", "failed"):
            raise PromotionError(f"{target.name} cannot serve: {target.status_reason or target.status}")
        if target.tainted and not force:
            raise PromotionError(f"{target.name} is tainted ({target.tainted_reason}); pass --force to serve it anyway")
    else:
        if current is None:
            raise PromotionError(f"{persona.name} has no active version to roll back from")
        target = next((v for v in await registry.promotion_history(db, persona.name)
                       if v.name != current.name and not v.tainted and v.status == "retired"), None)
    if target is None:
        await registry.deactivate(db, persona.name, event="rolled_back", detail="no earlier version: back to the spec model")
        log.info("%s: rolled back from %s to the spec model", persona.name, current.name)
        if on_switched is not None:
            await on_switched(persona, None)
        return PromotionResult(persona.name, None, current.name, "rolled_back", _unload_pending(persona, current, None))
    await prepare_serving(settings, persona, target, admin_factory=admin_factory)
    await registry.set_active(db, target.name, event="rolled_back",
                              detail=f"from {current.name}" if current else None)
    log.info("%s: rolled back to %s (was %s)", persona.name, target.name, current.name if current else "the spec model")
    if on_switched is not None:
        await on_switched(persona, target)
    return PromotionResult(persona.name, target.name, current.name if current else None, "rolled_back",
                           _unload_pending(persona, current, target))


async def prepare_serving(settings: Settings, persona: PersonaSpec, version: ModelVersion, *,
                          admin_factory: AdminFactory | None = None) -> None:
    """Make sure `version` can serve before routing switches to it (raises PromotionError)."""
    try:
        model = serving_model(persona, version)
    except UnservableVersion as exc:
        raise PromotionError(str(exc)) from None
    if model.backend == "vllm":
        admin = (admin_factory or vllm_admin)(*admin_endpoint(model, settings))
        try:
            # exist_ok: a retried promotion, or a bot that already registered it, is fine. The name is
            # new to vLLM otherwise: versioned names are never reused.
            await admin.load_adapter(version.name, version.adapter_path, exist_ok=True)
        except BackendError as exc:
            raise PromotionError(f"vLLM did not load {version.name}: {exc}") from None
        finally:
            await admin.aclose()
    elif model.backend == "openai":
        await _check_openai_model(settings, persona, model.model, model.base_url, model.api_key_env)
    elif not (Path(model.adapter or "") / "adapter_config.json").is_file():
        raise PromotionError(f"{version.name}: no LoRA adapter (adapter_config.json) in {model.adapter}")


async def unload_after_grace(settings: Settings, persona: PersonaSpec, adapter: str, grace_s: float = DEFAULT_GRACE_S, *,
                             db: aiosqlite.Connection | None = None, admin_factory: AdminFactory | None = None) -> bool:
    """Wait `grace_s`, then unload `adapter` from the persona's vLLM server unless it became active again."""
    await asyncio.sleep(grace_s)
    if db is not None:
        active = await registry.active_version(db, persona.name)
        if active is not None and active.name == adapter:
            return False     # rolled back to it during the grace period
    admin = (admin_factory or vllm_admin)(*admin_endpoint(persona.model, settings))
    try:
        await admin.unload_adapter(adapter, missing_ok=True)
    except BackendError as exc:
        log.warning("could not unload %s from vLLM: %s", adapter, exc)
        return False
    finally:
        await admin.aclose()
    if db is not None:
        await registry.record_event(db, persona.name, adapter, "unloaded", f"from vLLM after {grace_s:g}s")
    return True


# -- helpers ------------------------------------------------------------------------------------


async def _get(db: aiosqlite.Connection, persona: PersonaSpec, name: str) -> ModelVersion:
    version = await registry.get_version(db, name)
    if version is None and name.isdigit():
        version = await registry.get_version(db, f"{persona.name}-v{name}")
    if version is None or version.persona != persona.name:
        known = ", ".join(v.name for v in await registry.list_versions(db, persona.name)) or "none"
        raise PromotionError(f"no version {name!r} of {persona.name} (known: {known})")
    return version


def _gate_rejected(version: ModelVersion) -> bool:
    from trainer.evaluate.gate import REJECTED

    return (version.status_reason or "").startswith(REJECTED)


def _unload_pending(persona: PersonaSpec, old: ModelVersion | None, new: ModelVersion | None) -> str | None:
    """The old version's vLLM adapter, when it is one and differs from the new version."""
    if old is None or persona.model.backend != "vllm" or old.backend == "openai":
        return None
    if new is not None and new.name == old.name:
        return None
    return old.name


async def _check_openai_model(settings: Settings, persona: PersonaSpec, model_id: str, base_url: str | None,
                              api_key_env: str | None) -> None:
    import openai

    section = settings.openai
    api_key = os.environ.get(api_key_env) if api_key_env else section.api_key
    key_name = api_key_env or "OPENAI_API_KEY"
    if not api_key:
        raise PromotionError(f"no OpenAI API key to check {model_id}: set {key_name}")
    client = openai.AsyncOpenAI(base_url=base_url or section.base_url, api_key=api_key, max_retries=1,
                                timeout=section.timeout_s)
    try:
        await client.models.retrieve(model_id)
    except openai.NotFoundError:
        raise PromotionError(f"OpenAI has no model {model_id!r} (the fine-tuning job may have failed or been deleted)") from None
    except openai.AuthenticationError:
        raise PromotionError(f"OpenAI refused the API key in {key_name}") from None
    except openai.PermissionDeniedError:
        raise PromotionError(f"the key in {key_name} may not use {model_id}") from None
    except openai.APIError as exc:
        raise PromotionError(f"could not check {model_id} with OpenAI ({type(exc).__name__})") from None
    finally:
        await client.close()
