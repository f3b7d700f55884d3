"""`ChatEngine.respond(persona, history)` → a `ReplyStream` of cleaned text deltas.

The engine builds the prompt (system prompt, with a card persona's triggered lorebook entries and
`{{user}}` resolved by `persona_prompt`, + history + post-history instructions under the persona's
token budget, counted with the backend's own tokenizer when it has one), streams from the persona's backend, cleans the
stream (stop sequences, label leakage), and decides what an empty reply means: silence for personas
that may stay silent, otherwise one more attempt and then the persona's `empty_reply`. A backend
failure becomes the persona's in-character `error_reply`; the error is kept on the `Reply` for the
caller to log (without content). It holds no per-conversation state: callers serialise turns.

Shutdown: `interrupt(notice)` ends every stream in progress at once (the backend call is
cancelled, the text so far is kept and `notice` appended) and makes later streams yield only the
notice. Such a reply has `interrupted` set and an `error`, so callers do not store it as an
exchange. With `metrics` (`bot.observability.metrics.BotMetrics`), each stream reports its outcome
and latencies, and each backend failure its kind.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Callable, Sequence

from bot.backends.base import Backend, BackendError, GenerationParams
from bot.engine.cleanup import StreamCleaner
from bot.engine.lorebook import lore_budget, select_lore
from bot.engine.prompt import TokenCounter, build_messages, estimate_tokens
from bot.engine.types import Reply, Turn
from bot.persona import macros
from bot.persona.spec import PersonaSpec

log = logging.getLogger(__name__)

BackendResolver = Callable[[PersonaSpec], Backend]

# Generic labels models use when they slip into writing the member's part.
GENERIC_USER_LABELS = ("User", "Human", "Student", "Learner", "Client", "Friend")


def generation_params(persona: PersonaSpec, stops: list[str], seed: int | None = None) -> GenerationParams:
    s = persona.sampling
    return GenerationParams(
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        repetition_penalty=s.repetition_penalty,
        stop=tuple(stops),
        seed=seed,
    )


def persona_prompt(persona: PersonaSpec, history: Sequence[Turn], count: TokenCounter | None = None) -> tuple[str, str]:
    """The system prompt and post-history instructions for one reply.

    A card's lorebook adds the entries the recent messages trigger (within its share of the
    budget, `bot.engine.lorebook`), and `{{user}}` becomes the display name of the member being
    answered (the last human speaker; the persona's user label before anyone spoke).
    """
    system = persona.system_prompt
    if persona.lore is not None and persona.lore.entries:
        counter = count or estimate_tokens
        lore = select_lore(persona.lore, [t.content for t in history], budget=lore_budget(persona.lore, persona.context_budget),
                           count=lambda text: counter([{"role": "system", "content": text}]))
        system = "\n\n".join(p for p in (lore.before, system, lore.after) if p)
    member = next((t.author_name for t in reversed(history) if not t.from_persona), persona.user_label)
    resolve = lambda text: macros.resolve(text, char=persona.display_name, user=member)  # noqa: E731
    return resolve(system), resolve(persona.post_history_instructions)


class ReplyStream:
    """Async-iterate for cleaned deltas; `reply` is complete once iteration ends."""

    def __init__(self, engine: "ChatEngine", persona: PersonaSpec, history: Sequence[Turn], seed: int | None):
        self._engine = engine
        self._persona = persona
        self._history = list(history)
        self._seed = seed
        self.reply = Reply()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._observed()

    async def text(self) -> str:
        """Consume the whole stream and return the final text."""
        async for _ in self:
            pass
        return self.reply.text

    async def _observed(self) -> AsyncIterator[str]:
        """`_run`, reporting outcome and latencies to the engine's metrics (when it has any)."""
        metrics = self._engine.metrics
        started = time.monotonic()
        first_text: float | None = None
        outcome = "interrupted"   # unless the stream ends by itself: the consumer gave up, or shutdown
        try:
            async for delta in self._run():
                if first_text is None and delta:
                    first_text = time.monotonic() - started
                yield delta
            if not self.reply.interrupted:
                outcome = "error" if self.reply.error else "silent" if self.reply.silent else "ok"
        finally:
            if metrics is not None:
                metrics.reply(self._persona.name, outcome, first_text, time.monotonic() - started)

    async def _run(self) -> AsyncIterator[str]:
        persona, reply = self._persona, self.reply
        engine = self._engine
        if engine.interrupted is not None:
            reply.interrupted, reply.error = True, "interrupted: shutting down"
            reply.text = engine.interrupted
            yield engine.interrupted
            return
        backend = self._engine.backend_for(persona)
        reply.model = backend.model_name
        counter = self._engine.counter_for(backend)
        system_prompt, post_history = persona_prompt(persona, self._history, counter)
        messages, reply.prompt_messages = build_messages(
            system_prompt, self._history, persona.context_budget, counter, post_history=post_history or None
        )
        member_labels = [persona.user_label, *GENERIC_USER_LABELS,
                         *{t.author_name for t in self._history if not t.from_persona}]
        own = {x.lower() for x in persona.labels}
        other_personas = [l for l in self._engine.other_persona_labels if l.lower() not in own]
        stops = list(persona.sampling.stop)
        attempts = 1 if persona.may_stay_silent else self._engine.empty_attempts
        for attempt in range(attempts):
            reply.attempts = attempt + 1
            cleaner = StreamCleaner(own_labels=persona.labels, other_labels=[*member_labels, *other_personas], stops=stops)
            params = generation_params(persona, [*stops, f"\n{persona.user_label}:"],
                                       None if self._seed is None else self._seed + attempt)
            try:
                async for delta in engine._until_interrupted(backend.stream(messages, params)):
                    out = cleaner.feed(delta)
                    if out:
                        yield out
                    if cleaner.done:
                        break
                out = cleaner.finish()
                if out:
                    yield out
            except _Interrupted:
                reply.interrupted, reply.error = True, "interrupted: shutting down"
                text = cleaner.text
                notice = engine.interrupted if not text else "\n\n" + engine.interrupted
                reply.text = text + notice
                yield notice
                return
            except BackendError as exc:
                # Logged by type and model only: the message may not contain member content.
                log.warning("backend %s failed for persona %s: %s", backend.model_name, persona.name, type(exc).__name__)
                if engine.metrics is not None:
                    engine.metrics.backend_error(backend.kind, type(exc).__name__)
                reply.error = f"{type(exc).__name__}: {exc}"
                apology = persona.error_reply if not cleaner.text else "\n\n" + persona.error_reply
                reply.text = cleaner.text + apology
                yield apology
                return
            reply.stopped_by = cleaner.stopped_by
            if cleaner.text:
                reply.text = cleaner.text
                return
        if persona.may_stay_silent:
            reply.silent = True
            reply.text = ""
            return
        reply.text = persona.empty_reply
        yield persona.empty_reply


class ChatEngine:
    """Stateless: one engine serves every persona and conversation."""

    def __init__(self, resolve_backend: BackendResolver, *, other_persona_labels: Sequence[str] = (), empty_attempts: int = 2,
                 metrics=None):
        self._resolve = resolve_backend
        self.metrics = metrics
        self.interrupted: str | None = None     # the notice, once `interrupt` was called
        self._streaming: set[asyncio.Queue] = set()   # the queue of every backend stream being read now
        self.other_persona_labels = list(other_persona_labels)
        self.empty_attempts = empty_attempts
        # id(backend) -> (backend, counter); the backend is kept so its id is never reused meanwhile.
        self._counters: dict[int, tuple[Backend, object]] = {}

    def backend_for(self, persona: PersonaSpec) -> Backend:
        return self._resolve(persona)

    def counter_for(self, backend: Backend):
        """The backend's tokenizer-based counter when it has one, else None (estimate).

        Asked once per backend, not per reply: whether a backend can count never changes.
        """
        key = id(backend)
        if key not in self._counters:
            try:
                probe = backend.count_tokens([{"role": "user", "content": "hi"}])
            except Exception:  # a counter that fails is no counter; the estimate still bounds the prompt
                probe = None
            self._counters[key] = (backend, backend.count_tokens if probe is not None else None)
        return self._counters[key][1]

    def respond(self, persona: PersonaSpec, history: Sequence[Turn], *, seed: int | None = None) -> ReplyStream:
        return ReplyStream(self, persona, history, seed)

    def interrupt(self, notice: str) -> None:
        """End every reply in progress with `notice`, and answer later ones with it alone (shutdown)."""
        self.interrupted = notice
        for queue in self._streaming:
            queue.put_nowait((_STOP, None))

    async def _until_interrupted(self, source: AsyncIterator[str]) -> AsyncIterator[str]:
        """`source`'s items until `interrupt` is called.

        The backend stream is read to the end in one task of its own (HTTP clients built on anyio
        must be entered and left in the same task), and cancelled there on interrupt or when the
        consumer stops early. Items, the end and an interrupt all arrive through one queue, so a
        reply costs that one task and no waiter per item (this runs for every reply)."""
        queue: asyncio.Queue = asyncio.Queue()

        async def pump() -> None:
            try:
                async for item in source:
                    queue.put_nowait((item, None))
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # handed to the consumer, which raises it
                queue.put_nowait((_END, exc))
                return
            queue.put_nowait((_END, None))

        self._streaming.add(queue)
        reader = asyncio.ensure_future(pump())
        try:
            if self.interrupted is not None:
                raise _Interrupted
            while True:
                item, exc = await queue.get()
                if item is _STOP:
                    raise _Interrupted
                if exc is not None:
                    raise exc
                if item is _END:
                    return
                yield item
        finally:
            self._streaming.discard(queue)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


_END = object()
_STOP = object()


class _Interrupted(Exception):
    """The engine was interrupted while a backend was streaming."""
