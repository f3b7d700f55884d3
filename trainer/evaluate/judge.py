"""The pairwise judge: is the candidate's reply better than the active version's, by the persona's rubric?

Contract:

- `judge_pairs(judge, cases)` asks the judge about every `Case` (a held-out context, the candidate's
  reply and the baseline's reply: the active version's, or the base model's) twice, once with the
  candidate as "A" and once as "B", which cancels position bias. A pair is a *win* only if the
  candidate wins both times, a *loss* only if it loses both times, and a *tie* otherwise. The win
  rate counts ties half, so a judge that always says "A" yields exactly 0.5.
- A judge answers `{"winner": "A" | "B" | "tie", "reason": "…"}`. `OpenAIJudge` (OpenAI or vLLM,
  through the openai SDK) asks for it with `response_format` (a JSON schema) and falls back to a
  plain request when the server refuses that; every answer is parsed leniently (`parse_verdict`),
  and an answer that cannot be read is counted (`unparsed`) and holds no preference (the pair
  becomes a tie at best).
- `LikelihoodJudge` ("local") works offline with a small model: a 135M model cannot follow a
  rubric well enough to answer in words, so it scores each reply by its mean per-token
  log-likelihood as the persona's turn after the system prompt, the rubric and the context, and
  prefers the higher one (a tie within `tie_margin` nats per token). Its reason gives both scores.
- `JudgeResult.to_dict()` is what `eval --json` prints under `judge`: win_rate, pairs, wins,
  losses, ties, unparsed and the clearest examples (`EXAMPLES` wins and losses, with reasons).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

RUBRIC_FILE = "rubric.md"
EXAMPLES = 3
DEFAULT_RUBRIC = ("The better reply stays in character as the persona, answers what the member said accurately "
                  "and helpfully, and never speaks as the member.")

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": ["A", "B", "tie"]},
        "reason": {"type": "string"},
    },
    "required": ["winner", "reason"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Case:
    """One held-out context and the two replies to compare."""

    name: str                    # probe name or "val-<row>"
    context: list[dict]          # the conversation so far: {"role": "user"|"assistant", "content": ...}
    candidate: str
    baseline: str


@dataclass(frozen=True)
class Verdict:
    winner: str | None           # "A", "B", "tie"; None when the answer could not be read
    reason: str = ""
    raw: str = ""
    margin: float | None = None  # how clear the preference was, where the judge can say (LikelihoodJudge)

    @property
    def parsed(self) -> bool:
        return self.winner is not None


class Judge(Protocol):
    name: str

    async def compare(self, persona, rubric: str, context: list[dict], reply_a: str, reply_b: str) -> Verdict: ...


def judge_messages(persona, rubric: str, context: list[dict], reply_a: str, reply_b: str) -> list[dict]:
    """The prompt a text judge reads: the rubric, the conversation, the two replies, the answer format."""
    member = persona.user_label
    lines = [f"{persona.display_name if t['role'] == 'assistant' else member}: {t['content']}" for t in context]
    system = (f"You judge replies written by {persona.display_name}, a persona in a chat community.\n"
              f"{persona.display_name}'s instructions:\n{persona.offline_system_prompt}\n\nRubric:\n{rubric.strip()}\n\n"
              'Compare reply A and reply B to the last message. Answer only with JSON: '
              '{"winner": "A" | "B" | "tie", "reason": "one sentence"}.')
    user = ("Conversation:\n" + "\n".join(lines) + f"\n\nReply A ({persona.display_name}): {reply_a}\n\n"
            f"Reply B ({persona.display_name}): {reply_b}\n\nWhich reply is better by the rubric?")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_WINNER = re.compile(r'"?winner"?\s*[:=]\s*"?(A|B|tie)\b', re.IGNORECASE)


def parse_verdict(text: str) -> Verdict:
    """A judge's answer: JSON (possibly inside a code fence or prose), else a `winner: X` line."""
    raw = text or ""
    for candidate in _json_objects(raw):
        winner = _winner(candidate.get("winner"))
        if winner is not None:
            return Verdict(winner, str(candidate.get("reason", "")).strip(), raw)
    match = _WINNER.search(raw)
    if match:
        return Verdict(_winner(match.group(1)), "", raw)
    return Verdict(None, "", raw)


def _winner(value) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip().strip(".").lower()
    return {"a": "A", "b": "B", "tie": "tie", "same": "tie", "equal": "tie"}.get(v)


def _json_objects(text: str):
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"\{", text)]:
        try:
            obj, _ = decoder.raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


# -- pairs --------------------------------------------------------------------------------------


@dataclass
class PairResult:
    case: Case
    candidate_first: Verdict     # the candidate was reply A
    candidate_second: Verdict    # the candidate was reply B

    @property
    def outcome(self) -> str:
        first = {"A": "win", "B": "loss"}.get(self.candidate_first.winner or "", "tie")
        second = {"B": "win", "A": "loss"}.get(self.candidate_second.winner or "", "tie")
        return first if first == second else "tie"

    @property
    def clarity(self) -> float:
        """How clear the outcome was: the judge's margins where it has them, else 1 per decided answer."""
        total = 0.0
        for v in (self.candidate_first, self.candidate_second):
            total += abs(v.margin) if v.margin is not None else (1.0 if v.winner in ("A", "B") else 0.0)
        return total

    def to_dict(self) -> dict:
        reasons = [v.reason for v in (self.candidate_first, self.candidate_second) if v.reason]
        return {"context": self.case.name, "last_message": self.case.context[-1]["content"] if self.case.context else "",
                "candidate": self.case.candidate, "baseline": self.case.baseline, "outcome": self.outcome,
                "reasons": reasons, "verdicts": [self.candidate_first.winner, self.candidate_second.winner]}


@dataclass
class JudgeResult:
    judge: str
    baseline: str                     # the version compared against, or "base model"
    pairs: list[PairResult] = field(default_factory=list)

    @property
    def wins(self) -> int:
        return sum(p.outcome == "win" for p in self.pairs)

    @property
    def losses(self) -> int:
        return sum(p.outcome == "loss" for p in self.pairs)

    @property
    def ties(self) -> int:
        return sum(p.outcome == "tie" for p in self.pairs)

    @property
    def unparsed(self) -> int:
        """Answers (two per pair) that could not be read."""
        return sum(not v.parsed for p in self.pairs for v in (p.candidate_first, p.candidate_second))

    @property
    def win_rate(self) -> float | None:
        if not self.pairs:
            return None
        return (self.wins + 0.5 * self.ties) / len(self.pairs)

    def clearest(self, outcome: str, n: int = EXAMPLES) -> list[PairResult]:
        found = [p for p in self.pairs if p.outcome == outcome]
        return sorted(found, key=lambda p: p.clarity, reverse=True)[:n]

    def to_dict(self) -> dict:
        return {"judge": self.judge, "baseline": self.baseline, "win_rate": self.win_rate, "pairs": len(self.pairs),
                "wins": self.wins, "losses": self.losses, "ties": self.ties, "unparsed": self.unparsed,
                "examples": {"wins": [p.to_dict() for p in self.clearest("win")],
                             "losses": [p.to_dict() for p in self.clearest("loss")]}}


async def judge_pairs(judge: Judge, persona, rubric: str, cases: list[Case], *, baseline: str,
                      progress=None) -> JudgeResult:
    """Judge every case in both orders (see the module docstring)."""
    result = JudgeResult(judge.name, baseline)
    for i, case in enumerate(cases):
        first = await _ask(judge, persona, rubric, case.context, case.candidate, case.baseline)
        second = await _ask(judge, persona, rubric, case.context, case.baseline, case.candidate)
        result.pairs.append(PairResult(case, first, second))
        if progress is not None:
            progress(i + 1, len(cases))
    return result


async def _ask(judge: Judge, persona, rubric, context, a, b) -> Verdict:
    try:
        return await judge.compare(persona, rubric, context, a, b)
    except Exception as exc:  # one failed request is an unreadable answer, counted, not a crashed gate
        log.warning("judge %s failed on one pair: %s: %s", judge.name, type(exc).__name__, exc)
        return Verdict(None, "", f"{type(exc).__name__}: {exc}")


# -- judges -------------------------------------------------------------------------------------


class OpenAIJudge:
    """A judge behind an OpenAI-compatible API (OpenAI or vLLM), asked for structured output."""

    def __init__(self, client, model: str, *, name: str):
        self.client, self.model, self.name = client, model, name
        self.structured = True    # switched off for good after the server refuses response_format

    async def compare(self, persona, rubric, context, reply_a, reply_b) -> Verdict:
        import openai

        messages = judge_messages(persona, rubric, context, reply_a, reply_b)
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0, "max_tokens": 300}
        if self.structured:
            try:
                response = await self.client.chat.completions.create(
                    **kwargs, response_format={"type": "json_schema",
                                               "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True}})
                return parse_verdict(response.choices[0].message.content or "")
            except openai.BadRequestError:
                log.info("judge %s does not take response_format; parsing plain answers", self.name)
                self.structured = False
        response = await self.client.chat.completions.create(**kwargs)
        return parse_verdict(response.choices[0].message.content or "")

    async def aclose(self) -> None:
        await self.client.close()


class LikelihoodJudge:
    """The offline judge: each reply's mean per-token log-likelihood as the persona's turn (see the docstring)."""

    def __init__(self, model, tokenizer, *, name: str = "local", tie_margin: float = 0.05):
        self.model, self.tokenizer, self.name, self.tie_margin = model, tokenizer, name, tie_margin
        self._cache: dict[tuple, float] = {}

    async def compare(self, persona, rubric, context, reply_a, reply_b) -> Verdict:
        import asyncio

        a = await asyncio.to_thread(self._score, persona, rubric, context, reply_a)
        b = await asyncio.to_thread(self._score, persona, rubric, context, reply_b)
        diff = a - b
        winner = "tie" if abs(diff) < self.tie_margin else ("A" if diff > 0 else "B")
        reason = f"mean log-likelihood per token as {persona.display_name}: A {a:.2f}, B {b:.2f}"
        return Verdict(winner, reason, json.dumps({"winner": winner, "reason": reason}), margin=diff)

    def _score(self, persona, rubric, context, reply) -> float:
        key = (persona.name, rubric, json.dumps(context), reply)
        if key not in self._cache:
            from trainer.evaluate.roles import turn_logprob

            system = f"{persona.offline_system_prompt}\n\n{rubric.strip()}"
            self._cache[key] = turn_logprob(self.model, self.tokenizer, [{"role": "system", "content": system}, *context],
                                            reply, role="assistant")
        return self._cache[key]
