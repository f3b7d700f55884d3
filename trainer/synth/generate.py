"""Run synthetic generation: plan → writer (any Backend) → clean-up → synthetic sources.

Contract of `run_synth(db, backend, persona, catalog, options)`:
- Plans `options.count` items (`Catalog.plan`, deterministic for the seed) and skips every item
  already done for the persona (kept or dropped). Items whose transcript was stored by an
  interrupted run are cleaned again without calling the backend. So a rerun generates only what
  is missing, and a rerun with a larger count only adds items.
- Calls the backend with at most `options.concurrency` generations in flight. Retryable
  `BackendError`s are retried up to `max_retries` times with exponential backoff and jitter; an
  item that still fails is counted as `failed` and left for the next run. A non-retryable error
  (bad key, unknown model), or `max_consecutive_failures` failures in a row, stops the run with
  `SynthAborted`; everything finished before that is already committed.
- Transcripts are cleaned in plan order (not completion order), so near-duplicate decisions and
  hence the output do not depend on which request happened to finish first.
- A template's opening (see `catalog`) is prepended to the writer's reply before clean-up, and the
  stored transcript includes it.
- Kept conversations get the persona's style augmentation (user turns only) and are stored as
  sources of kind `synthetic` with full provenance (see `store.py`).
- Progress is reported through `on_event(event, report)`; the core never prints.

Tokens: the backend's own tokenizer is used when it can count (`Backend.count_tokens`), else the
count is estimated at four characters a token and flagged as estimated. Cost is tokens times the
per-million prices given in the options (0 when unknown).
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import aiosqlite

from bot.backends.base import Backend, BackendError, GenerationParams
from bot.engine.tokens import estimate_text_tokens
from bot.persona.spec import PersonaSpec
from trainer.synth import store
from trainer.synth.augment import augment_turns
from trainer.synth.catalog import Catalog, PlanItem
from trainer.synth.clean import CleanStats, Cleaner
from trainer.synth.parse import Speakers


class SynthAborted(RuntimeError):
    """The run stopped early; what was finished is stored, and a rerun continues from there."""

    def __init__(self, message: str, report: "SynthReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class RunOptions:
    count: int
    seed: int = 0
    start: int = 0                          # skip plan items before this index (the scheduler extends its plan)
    concurrency: int | None = None          # None: the persona's [synthetic] value
    max_retries: int | None = None
    backoff_s: float | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tags: tuple[str, ...] = ()              # only plan topics with these tags (all when empty)
    other_personas: tuple[str, ...] = ()    # names normalised to this persona (EVE → TIM)
    price_in_per_mtok: float = 0.0          # USD per million prompt tokens
    price_out_per_mtok: float = 0.0         # USD per million completion tokens
    max_consecutive_failures: int = 8


@dataclass
class SynthReport:
    persona: str
    seed: int
    planned: int = 0
    already_done: int = 0               # kept or dropped by an earlier run: skipped
    reused: int = 0                     # transcript stored by an interrupted run, cleaned now
    generated: int = 0                  # transcripts received from the backend in this run
    failed: int = 0                     # still failing after retries; left for the next run
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float = 0.0
    clean: CleanStats = field(default_factory=CleanStats)
    aborted: str | None = None

    @property
    def finished(self) -> int:
        return self.already_done + self.clean.seen

    def as_dict(self) -> dict:
        d = asdict(self)
        d["clean"] = self.clean.as_dict()
        d["kept"] = self.clean.kept
        d["dropped"] = d["clean"]["dropped"]
        return d


Event = Callable[[str, SynthReport], None]


def speakers_for(persona: PersonaSpec, other_personas: Iterable[str] = ()) -> Speakers:
    own = {label.lower() for label in persona.labels} | {persona.user_label.lower()}
    others = tuple(dict.fromkeys(o for o in other_personas if o.lower() not in own))
    return Speakers(
        persona=persona.display_name,
        user=persona.user_label,
        persona_labels=tuple(persona.labels[1:]) + tuple(persona.synthetic.persona_labels),
        user_labels=tuple(persona.synthetic.user_labels),
        other_personas=others,
    )


def item_params(persona: PersonaSpec, options: RunOptions, item: PlanItem) -> GenerationParams:
    s = persona.synthetic
    return GenerationParams(
        temperature=s.temperature if options.temperature is None else options.temperature,
        top_p=s.top_p if options.top_p is None else options.top_p,
        max_tokens=s.max_tokens if options.max_tokens is None else options.max_tokens,
        repetition_penalty=persona.sampling.repetition_penalty,
        seed=item.seed,
    )


def item_opening(persona: PersonaSpec, item: PlanItem) -> str:
    return item.template.render_opening(persona=persona.display_name, topic=item.topic.text,
                                        user_profile=item.profile.text, user=persona.user_label)


def continue_opening(opening: str, reply: str) -> str:
    """The transcript: the template's opening continued by the writer's reply."""
    if not opening:
        return reply
    if opening[-1].isspace() or reply[:1].isspace():
        return opening + reply
    return opening + " " + reply


def item_messages(persona: PersonaSpec, item: PlanItem) -> list[dict]:
    prompt = item.template.render(persona=persona.display_name, topic=item.topic.text,
                                  user_profile=item.profile.text, user=persona.user_label)
    return [{"role": "system", "content": persona.synthetic.writer_system}, {"role": "user", "content": prompt}]


def _count(backend: Backend, messages: list[dict], completion: str) -> tuple[int, int, bool]:
    try:
        prompt = backend.count_tokens(messages)
        full = backend.count_tokens(messages + [{"role": "assistant", "content": completion}]) if prompt is not None else None
    except Exception:                       # counting is a nicety; never fail a generation over it
        prompt = full = None
    if prompt is None or full is None:
        return sum(estimate_text_tokens(m["content"]) for m in messages), estimate_text_tokens(completion), True
    return prompt, max(full - prompt, 0), False


@dataclass
class _Generated:
    row_id: int
    raw: str


class _ItemFailed(Exception):
    def __init__(self, error: BackendError):
        super().__init__(str(error))
        self.error = error


async def run_synth(db: aiosqlite.Connection, backend: Backend, persona: PersonaSpec, catalog: Catalog,
                    options: RunOptions, on_event: Event | None = None) -> SynthReport:
    spec = persona.synthetic
    concurrency = options.concurrency or spec.concurrency
    max_retries = spec.max_retries if options.max_retries is None else options.max_retries
    backoff_s = spec.backoff_s if options.backoff_s is None else options.backoff_s
    emit = on_event or (lambda event, report: None)

    plan = catalog.plan(options.count, options.seed, options.tags or None)[options.start :]
    report = SynthReport(persona=persona.name, seed=options.seed, planned=len(plan))
    existing = await store.load_items(db, persona.name, [it.key for it in plan])
    todo = [it for it in plan if existing.get(it.key) is None or existing[it.key].status == "generated"]
    report.already_done = len(plan) - len(todo)

    cleaner = Cleaner(speakers_for(persona, options.other_personas), min_turns=spec.min_turns,
                      allow_silence=persona.may_stay_silent, dedup_threshold=spec.dedup_threshold)
    for turns in await store.kept_conversations(db, persona.name):
        cleaner.remember(turns)
    report.clean = cleaner.stats
    emit("start", report)

    semaphore = asyncio.Semaphore(concurrency)
    jitter = random.Random(f"synth-jitter:{options.seed}")

    async def produce(item: PlanItem) -> _Generated:
        row = existing.get(item.key)
        if row is not None:                      # transcript stored by an interrupted run
            report.reused += 1
            return _Generated(row.id, row.raw)
        messages = item_messages(persona, item)
        params = item_params(persona, options, item)
        async with semaphore:
            attempt = 0
            while True:
                try:
                    reply = "".join([delta async for delta in backend.stream(messages, params)])
                    break
                except BackendError as exc:
                    if not exc.retryable:
                        raise
                    if attempt >= max_retries:
                        raise _ItemFailed(exc) from exc
                    report.retries += 1
                    emit("retry", report)
                    await asyncio.sleep(backoff_s * (2 ** attempt) * (1 + 0.25 * jitter.random()))
                    attempt += 1
        prompt_tokens, completion_tokens, estimated = _count(backend, messages, reply)
        raw = continue_opening(item_opening(persona, item), reply)
        sampling = {k: v for k, v in asdict(params).items() if k != "stop"}
        provenance = {"run_seed": options.seed, "backend": backend.kind, "model": backend.model_name, "sampling": sampling}
        row_id = await store.insert_generated(db, persona.name, item, provenance, raw, attempts=attempt + 1,
                                              prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, estimated=estimated)
        report.generated += 1
        report.prompt_tokens += prompt_tokens
        report.completion_tokens += completion_tokens
        report.tokens_estimated |= estimated
        report.cost_usd = (report.prompt_tokens * options.price_in_per_mtok + report.completion_tokens * options.price_out_per_mtok) / 1e6
        emit("generated", report)
        return _Generated(row_id, raw)

    tasks = [asyncio.create_task(produce(item)) for item in todo]
    consecutive_failures = 0
    try:
        # Clean in plan order so the result does not depend on which request finished first.
        for item, task in zip(todo, tasks):
            try:
                generated = await task
            except _ItemFailed as exc:
                report.failed += 1
                consecutive_failures += 1
                emit("failed", report)
                if consecutive_failures >= options.max_consecutive_failures:
                    raise SynthAborted(f"{consecutive_failures} generations in a row failed after retries; last error: {exc}") from exc
                continue
            except BackendError as exc:
                raise SynthAborted(f"the backend refused the request ({type(exc).__name__}: {exc}); fix it and run again to continue") from exc
            consecutive_failures = 0
            cleaned = cleaner.clean(generated.raw)
            if cleaned.kept:
                turns = augment_turns(cleaned.turns, spec.style, item.seed)
                await store.save_kept(db, persona.name, generated.row_id, turns,
                                      persona_label=persona.display_name, user_label=persona.user_label)
                emit("kept", report)
            else:
                await store.mark_dropped(db, generated.row_id, cleaned.reason, cleaned.detail)
                emit("dropped", report)
    except SynthAborted as exc:
        report.aborted = str(exc)
        exc.report = report
        raise
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        emit("end", report)
    return report
