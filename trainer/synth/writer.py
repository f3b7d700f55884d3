"""The transcript writer: which backend writes synthetic transcripts, and the scheduler's entry point.

Contract:
- `build_writer(settings, persona, kind=None, model=None, base_url=None)` builds the backend with
  the project's factories. The writer is not the persona: it gets a base model, never the
  persona's adapter, and the OpenAI-compatible client does no retries of its own, so `run_synth`
  counts and backs off retries itself. Raises `WriterError` with a one-line reason.
- `other_persona_names(settings, persona)` lists the other personas' names and aliases, which the
  clean-up normalises to this persona's name (EVE → TIM).
- `add_conversations(db, settings, persona, count)` is what the scheduler calls for
  `[synthetic].per_run`: it continues the persona's scheduled plan (seed `SCHEDULE_SEED`) with
  `count` new items and returns how many conversations were kept.
"""
from __future__ import annotations

import aiosqlite

from bot.backends.base import Backend, BackendError
from bot.persona.spec import ModelSpec, PersonaSpec
from bot.settings import Settings

BACKENDS = ("openai", "vllm", "local")
#: Plan seed of scheduled runs; kept apart from the CLI's default seed 0 so both plans grow independently.
SCHEDULE_SEED = 1_000_003


class WriterError(ValueError):
    """The writer backend cannot be built; the message says why in one line."""


def build_writer(settings: Settings, persona: PersonaSpec, kind: str | None = None, model: str | None = None,
                 base_url: str | None = None) -> Backend:
    kind = kind or persona.model.backend
    if kind not in BACKENDS:
        raise WriterError(f"unknown backend {kind!r}; expected one of {', '.join(BACKENDS)}")
    own = kind == persona.model.backend
    name = model or (persona.model.model if own else None)
    if name is None:
        raise WriterError(f"name the writer model (--model) when the backend {kind} is not the persona's own ({persona.model.backend})")
    spec = ModelSpec(backend=kind, model=name, base_url=base_url or (persona.model.base_url if own else None),
                     api_key_env=persona.model.api_key_env if own else None)
    try:
        if kind in ("openai", "vllm"):
            from bot.backends.openai_compat import openai_compat_from_settings

            section = (settings.openai if kind == "openai" else settings.vllm).model_copy(update={"max_retries": 0})
            return openai_compat_from_settings(section, kind=kind, model=spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env)
        from bot.backends.pool import DEFAULT_FACTORIES

        return DEFAULT_FACTORIES[kind](spec, settings)
    except ImportError as exc:
        raise WriterError(f"the {kind} backend is not available in this installation ({exc}); "
                          "install personabot[local] for local models") from None
    except BackendError as exc:
        raise WriterError(str(exc)) from None


def other_persona_names(settings: Settings, persona: PersonaSpec) -> tuple[str, ...]:
    from bot.persona import load_persona, persona_folders

    names: list[str] = []
    for name, folder in persona_folders(settings.core.persona_dirs()).items():
        if name == persona.name:
            continue
        try:
            other = load_persona(folder)
        except Exception:                       # an invalid neighbour must not block this persona
            continue
        names += [other.display_name, *other.aliases]
    return tuple(names)


async def add_conversations(db: aiosqlite.Connection, settings: Settings, persona: PersonaSpec, count: int) -> int:
    """Generate `count` more items of the persona's scheduled plan; returns the conversations kept."""
    from trainer.synth.catalog import load_catalog
    from trainer.synth.generate import RunOptions, run_synth

    if count <= 0:
        return 0
    async with db.execute("SELECT COALESCE(MAX(item_index) + 1, 0) FROM synth_items WHERE persona = ? AND run_seed = ?",
                          (persona.name, SCHEDULE_SEED)) as cur:
        (start,) = await cur.fetchone()
    catalog = load_catalog(persona)
    writer = build_writer(settings, persona)
    try:
        report = await run_synth(db, writer, persona, catalog, RunOptions(
            count=start + count, start=start, seed=SCHEDULE_SEED, other_personas=other_persona_names(settings, persona)))
    finally:
        await writer.aclose()
    return report.clean.kept
