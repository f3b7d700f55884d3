"""Behaviour probes: `personas/<name>/probes.toml`, and running them against a backend.

A probe is a prompt (or a short conversation ending with the member's turn) and the checks its
reply must pass. The file also holds the persona's gate thresholds:

    [gate]
    max_loss_regression = 0.02   # candidate may be at most 2% worse than the active version
    must_beat_base = true        # and must beat the untuned base model
    min_pass_rate = 1.0          # share of probes that must pass

    [defaults]                   # generation settings for every probe
    temperature = 0.0            # greedy, so a probe gives the same answer every run
    seed = 0

    [[probe]]
    name = "greets-and-asks-back"
    prompt = "Hi, can you help me with fractions?"
    must_contain_any = ["?"]
    must_not_contain = ["as an AI"]

    [[probe]]
    name = "stays-silent-on-chatter"
    conversation = [{ role = "user", content = "lol" }]
    expect_silence = true

Checks, each reported by name when it fails:

- `terminates`: the reply ended on its own (end of turn or a stop sequence), not by running into
  `max_tokens` (the probe's, else the persona's `sampling.max_tokens`);
- `no_label_leakage`: the raw model output neither opens with a speaker label ("TIM: ...") nor
  starts a line with one ("\\nUser: ..."): the failure the engine's clean-up hides from members
  but a fine-tune must not have learnt. Checked on the raw output, before any clean-up;
- `must_contain` (all), `must_contain_any` (at least one), `must_not_contain` (none):
  case-insensitive substrings; `must_match` / `must_not_match`: regular expressions. These are
  checked on the cleaned reply, the text a member would see;
- `expect_silence`: true → the reply must be empty; false → it must not be. Unset, an empty
  reply fails unless the persona may stay silent.

Errors name the file and the probe (`probes.toml: probe[2] (greets): must_match: bad regex`).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.backends.base import Backend, BackendError, GenerationParams
from bot.engine.checks import leaked_label, looks_runaway
from bot.engine.cleanup import CONTROL_STOPS, StreamCleaner
from bot.engine.engine import GENERIC_USER_LABELS, persona_prompt
from bot.engine.prompt import build_messages
from bot.engine.tokens import estimate_text_tokens
from bot.engine.types import Turn
from bot.persona.spec import PersonaSpec

PROBES_FILE = "probes.toml"


class ProbeFileError(ValueError):
    """A probes file that cannot be used; the message names the file and each bad entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateThresholds(_Strict):
    max_loss_regression: float = Field(
        0.02, ge=0.0, description="How much worse (relative) than the active version's held-out loss a candidate may be.")
    must_beat_base: bool = Field(True, description="The candidate's held-out loss must be below the base model's.")
    min_pass_rate: float = Field(1.0, ge=0.0, le=1.0, description="Share of probes that must pass.")


class ProbeDefaults(_Strict):
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy, so probes are reproducible.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(0, description="Seed for sampled probes.")
    max_tokens: int | None = Field(None, ge=1, description="Default token limit; else the persona's sampling.max_tokens.")


class ProbeTurn(_Strict):
    role: Literal["user", "assistant"]
    content: str


class Probe(_Strict):
    name: str = Field(min_length=1)
    prompt: str | None = Field(None, description="A single member message.")
    conversation: list[ProbeTurn] | None = Field(None, description="Or a short conversation ending with the member's turn.")
    max_tokens: int | None = Field(None, ge=1)
    terminates: bool = Field(True, description="The reply must end before max_tokens.")
    no_label_leakage: bool = True
    must_contain: list[str] = Field(default_factory=list)
    must_contain_any: list[str] = Field(default_factory=list)
    must_not_contain: list[str] = Field(default_factory=list)
    must_match: list[str] = Field(default_factory=list)
    must_not_match: list[str] = Field(default_factory=list)
    expect_silence: bool | None = None

    @field_validator("must_match", "must_not_match")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression {p!r}: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _one_input(self) -> "Probe":
        if (self.prompt is None) == (self.conversation is None):
            raise ValueError("give exactly one of `prompt` or `conversation`")
        if self.conversation is not None and (not self.conversation or self.conversation[-1].role != "user"):
            raise ValueError("a conversation must end with a user turn (the one the persona answers)")
        return self

    def messages(self) -> list[dict]:
        """The probe's input as chat messages."""
        if self.prompt is not None:
            return [{"role": "user", "content": self.prompt}]
        return [{"role": t.role, "content": t.content} for t in self.conversation]

    def turns(self, persona: PersonaSpec) -> list[Turn]:
        return context_turns(persona, self.messages())


class ProbeSuite(_Strict):
    gate: GateThresholds = Field(default_factory=GateThresholds)
    defaults: ProbeDefaults = Field(default_factory=ProbeDefaults)
    probe: list[Probe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "ProbeSuite":
        names = [p.name for p in self.probe]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"probe names must be unique (repeated: {', '.join(dupes)})")
        return self


def load_probes(persona: PersonaSpec) -> ProbeSuite:
    """The persona's probes file; an absent file is an empty suite (the report then says so)."""
    path = persona.data_file(PROBES_FILE)
    if not path.is_file():
        return ProbeSuite()
    return parse_probes(path.read_text(encoding="utf-8"), path)


def parse_probes(text: str, path: Path | str = PROBES_FILE) -> ProbeSuite:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProbeFileError(f"{path}: not valid TOML: {exc}") from None
    try:
        return ProbeSuite.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = list(e["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            if len(loc) >= 2 and loc[0] == "probe" and isinstance(loc[1], int):
                entries = raw.get("probe") or []
                name = entries[loc[1]].get("name", "?") if loc[1] < len(entries) and isinstance(entries[loc[1]], dict) else "?"
                where = f"probe[{loc[1]}] ({name})" + "".join(f".{p}" for p in loc[2:])
            message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"{path}: {where}: {message}")
        raise ProbeFileError("\n".join(lines)) from None


# -- running ------------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)   # one line per failed check
    reply: str = ""                                      # cleaned, what a member would see
    raw: str = ""                                        # the model's own output
    finish: str = "stop"                                 # stop | length | error

    def to_dict(self) -> dict:
        return asdict(self)


def _ran_out(backend: Backend, raw: str, max_tokens: int) -> bool:
    """Did generation stop at max_tokens? Asks the backend when it can tell, else counts tokens."""
    stats = getattr(backend, "last_stats", None)
    reason = getattr(stats, "finish_reason", None)
    if reason in ("stop", "length"):
        return reason == "length"
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None:
        try:
            return len(tokenizer(raw, add_special_tokens=False)["input_ids"]) >= max_tokens
        except Exception:  # a tokenizer that cannot count falls through to the estimate
            pass
    return looks_runaway(raw, max_tokens)


def context_turns(persona: PersonaSpec, messages: list[dict]) -> list[Turn]:
    """Chat messages ({"role": "user"|"assistant", "content"}) as the engine's turns."""
    return [Turn("probe", persona.user_label, m["content"], from_persona=m["role"] == "assistant") for m in messages]


async def generate(backend: Backend, persona: PersonaSpec, turns: list[Turn], defaults: ProbeDefaults | None = None,
                   max_tokens: int | None = None) -> tuple[str, str]:
    """One reply the way serving would assemble the prompt: (raw model output, cleaned reply).

    Raises `BackendError` when generation fails."""
    defaults = defaults or ProbeDefaults()
    system, post_history = persona_prompt(persona, turns)   # lorebook, {{user}}, post-history: as serving
    messages, _ = build_messages(system, turns, persona.context_budget, post_history=post_history or None)
    max_tokens = max_tokens or defaults.max_tokens or persona.sampling.max_tokens
    # Only the persona's own stops and template control tokens: the member's label is *not* a
    # stop here, so a model that writes the member's turn shows it in the raw output.
    stops = tuple(dict.fromkeys([*persona.sampling.stop, *CONTROL_STOPS]))
    params = GenerationParams(temperature=defaults.temperature, top_p=defaults.top_p, max_tokens=max_tokens,
                              repetition_penalty=persona.sampling.repetition_penalty, stop=stops, seed=defaults.seed)
    raw_parts: list[str] = []
    async for delta in backend.stream(messages, params):
        raw_parts.append(delta)
    raw = "".join(raw_parts)
    member_names = [t.author_name for t in turns if not t.from_persona]
    cleaner = StreamCleaner(own_labels=persona.labels,
                            other_labels=[persona.user_label, *GENERIC_USER_LABELS, *member_names], stops=list(stops))
    cleaner.feed(raw)
    cleaner.finish()
    return raw, cleaner.text


async def run_probe(backend: Backend, persona: PersonaSpec, probe: Probe, defaults: ProbeDefaults | None = None) -> ProbeResult:
    """Generate one reply the way serving would (same prompt assembly) and check it."""
    defaults = defaults or ProbeDefaults()
    turns = probe.turns(persona)
    max_tokens = probe.max_tokens or defaults.max_tokens or persona.sampling.max_tokens
    try:
        raw, reply = await generate(backend, persona, turns, defaults, max_tokens)
    except BackendError as exc:
        return ProbeResult(probe.name, False, [f"generation failed: {type(exc).__name__}: {exc}"], finish="error")
    member_names = [t.author_name for t in turns if not t.from_persona]
    result = ProbeResult(probe.name, True, reply=reply, raw=raw)
    failures = result.failures

    if probe.terminates and _ran_out(backend, raw, max_tokens):
        result.finish = "length"
        failures.append(f"terminates: the reply ran into max_tokens ({max_tokens}) instead of ending its turn")
    if probe.no_label_leakage:
        label = leaked_label(raw, persona, member_names)
        if label:
            failures.append(f"no_label_leakage: the raw output contains the speaker label {label!r}")
    lowered = reply.lower()
    for text in probe.must_contain:
        if text.lower() not in lowered:
            failures.append(f"must_contain: {text!r} is missing")
    if probe.must_contain_any and not any(t.lower() in lowered for t in probe.must_contain_any):
        failures.append(f"must_contain_any: none of {probe.must_contain_any!r} appears")
    for text in probe.must_not_contain:
        if text.lower() in lowered:
            failures.append(f"must_not_contain: {text!r} appears")
    for pattern in probe.must_match:
        if not re.search(pattern, reply, re.IGNORECASE | re.MULTILINE):
            failures.append(f"must_match: nothing matches /{pattern}/")
    for pattern in probe.must_not_match:
        if re.search(pattern, reply, re.IGNORECASE | re.MULTILINE):
            failures.append(f"must_not_match: /{pattern}/ matches")
    silent = not reply.strip()
    expect_silence = probe.expect_silence
    if expect_silence is True and not silent:
        failures.append("expect_silence: the persona should have stayed silent but replied")
    elif silent and (expect_silence is False or (expect_silence is None and not persona.may_stay_silent)):
        failures.append("expect_silence: the reply is empty")
    result.passed = not failures
    return result


async def run_probes(backend: Backend, persona: PersonaSpec, suite: ProbeSuite) -> list[ProbeResult]:
    """Every probe, one after another (probes on one backend are not run concurrently, so the
    backend's own finish statistics belong to the probe that just ran)."""
    return [await run_probe(backend, persona, probe, suite.defaults) for probe in suite.probe]
