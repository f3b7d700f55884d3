"""Conversations → token ids + an assistant-only label mask, formatted exactly as serving formats them.

Contract:
- Messages are normalised the way serving builds prompts: the persona's system prompt first
  (`system_prompt="persona"`), turns merged by `bot.engine.prompt.render_turns` (consecutive turns
  of one role become one message), leading assistant turns dropped (serving never shows the model a
  conversation that opens with itself) and trailing user turns dropped (nothing to learn from).
- The text is the tokenizer's own chat template, the one serving uses. The label mask covers each
  trained assistant turn's content **plus the EOS token right after it**; everything else (system,
  user, role headers, the newline after EOS) is -100. An assistant turn with empty content is a
  deliberate silence and trains just EOS. `weight: 0` on an assistant message (OpenAI's format)
  keeps it as context without training on it.
- The mask is built from character spans of the rendered template and token offsets, then
  checked: the labelled tokens of every turn must decode to that turn's content + EOS. A template
  that is not prefix-stable, a turn whose tokens straddle the boundary, or a dataset whose mask is
  empty raises `MaskError` instead of silently training on the wrong tokens (TRL's
  `assistant_only_loss` trains on nothing when a template lacks `{% generation %}` markers).
- Conversations longer than `max_length` are split by exchanges (each chunk repeats the system
  prompt and starts with a user turn); an exchange that alone is too long is dropped and counted.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from bot.engine.prompt import render_turns
from bot.engine.types import Turn

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


class MaskError(ValueError):
    """The assistant-only label mask could not be built or failed its check."""


class DatasetFormatError(ValueError):
    """A training JSONL file has a record we cannot use; the message names the file and line."""


@dataclass
class Encoded:
    """One training row: token ids and labels (-100 = no loss), same length."""

    input_ids: list[int]
    labels: list[int]
    source: str = ""  # "file:line" (plus "#chunk" when split), for error messages

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class EncodeStats:
    conversations: int = 0
    examples: int = 0            # rows after splitting long conversations
    tokens: int = 0
    trained_tokens: int = 0
    assistant_turns: int = 0     # turns trained on
    silent_turns: int = 0        # empty assistant turns (trained as EOS only)
    split_conversations: int = 0
    dropped_exchanges: int = 0   # single exchanges longer than max_length
    system_prompt_replaced: int = 0
    eos_inserted: bool = False   # the chat template does not end assistant turns with EOS; we add it
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = dict(vars(self))
        d["warnings"] = list(self.warnings[:20])
        return d


# -- reading --------------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[tuple[str, list[dict]]]:
    """(source, messages) for each record of an OpenAI chat JSONL file; bad records raise with file:line."""
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(f"{where}: not valid JSON ({exc.msg})") from None
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not messages:
                raise DatasetFormatError(f"{where}: expected an object with a non-empty 'messages' list")
            for i, m in enumerate(messages):
                if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                    raise DatasetFormatError(f"{where}: messages[{i}]: role must be system, user or assistant")
                if not isinstance(m.get("content"), str):
                    raise DatasetFormatError(f"{where}: messages[{i}]: content must be a string")
                if m.get("weight", 1) not in (0, 1):
                    raise DatasetFormatError(f"{where}: messages[{i}]: weight must be 0 or 1")
            out.append((where, messages))
    return out


# -- normalising ----------------------------------------------------------------------------------

def normalise_messages(messages: Sequence[dict], system_prompt: str | None) -> tuple[list[dict], bool]:
    """Messages as serving would build them, each with a `weight`; and whether the system prompt was replaced.

    `system_prompt=None` keeps the example's own system message (if any).
    """
    own_system = [m["content"] for m in messages if m["role"] == "system"]
    turns_in = [m for m in messages if m["role"] != "system"]
    # render_turns merges runs of one role; compute the merged weights over the same runs.
    weights: list[int] = []
    prev = None
    for m in turns_in:
        w = int(m.get("weight", 1)) if m["role"] == "assistant" else 0
        if m["role"] == prev:
            weights[-1] = max(weights[-1], w)
        else:
            weights.append(w)
        prev = m["role"]
    turns = [Turn(author_id="member", author_name="User", content=m["content"], from_persona=m["role"] == "assistant")
             for m in turns_in]
    rendered = render_turns(turns)
    for m, w in zip(rendered, weights):
        m["weight"] = w
    while rendered and rendered[0]["role"] == "assistant":
        rendered.pop(0)
    while rendered and rendered[-1]["role"] == "user":
        rendered.pop()
    replaced = False
    if system_prompt is not None:
        replaced = bool(own_system) and own_system[0] != system_prompt
        system = system_prompt
    else:
        system = "\n".join(own_system) if own_system else None
    head = [{"role": "system", "content": system, "weight": 0}] if system is not None else []
    return head + rendered, replaced


# -- encoding -------------------------------------------------------------------------------------

def _render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)


def eos_text(tokenizer) -> str:
    if tokenizer.eos_token is None:
        raise MaskError("the tokenizer has no EOS token; cannot end assistant turns")
    return tokenizer.eos_token


def encode_messages(tokenizer, messages: list[dict], *, source: str = "", stats: EncodeStats | None = None) -> Encoded:
    """Tokenize normalised messages with the chat template and build + check the assistant label mask."""
    eos = eos_text(tokenizer)
    full = _render(tokenizer, messages)
    spans: list[tuple[int, int, str]] = []  # (start, end of content, content) in `full`
    inserts: list[int] = []                  # where the template lacks EOS after a turn and we add it
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], add_generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1])
        if not (through.startswith(prefix) and full.startswith(through)):
            raise MaskError(f"{source}: the chat template is not prefix-stable (rendering a conversation changes earlier "
                            "turns), so assistant spans cannot be located; use a template without per-turn rewriting")
        content = m["content"]
        if not through[len(prefix):].startswith(content):
            raise MaskError(f"{source}: the chat template changes assistant content (e.g. trims it); turn {i} not found verbatim")
        start, after = len(prefix), len(prefix) + len(content)
        if not full.startswith(eos, after):
            inserts.append(after)
        if m.get("weight", 1):
            spans.append((start, after, content))
    if inserts:
        for pos in sorted(inserts, reverse=True):
            full = full[:pos] + eos + full[pos:]
        if stats is not None:
            stats.eos_inserted = True

    def shift(pos: int) -> int:  # position in `full` after the EOS insertions strictly before `pos`
        return pos + len(eos) * sum(1 for p in inserts if p < pos)

    spans = [(shift(start), shift(after) + len(eos), content) for start, after, content in spans]

    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    labels = [IGNORE_INDEX] * len(ids)
    for start, end, content in spans:
        picked = []
        for t, (a, b) in enumerate(offsets):
            if b <= start or a >= end or a == b:
                continue
            if a < start or b > end:
                raise MaskError(f"{source}: a token straddles the edge of an assistant turn ({full[a:b]!r}); "
                                "the mask would not match the turn")
            labels[t] = ids[t]
            picked.append(ids[t])
        expected = content + eos
        got = tokenizer.decode(picked, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if got != expected and got.strip() != expected.strip():
            raise MaskError(f"{source}: masked tokens decode to {got!r}, expected the assistant turn + EOS {expected!r}")
        if stats is not None:
            stats.assistant_turns += 1
            stats.silent_turns += content == ""
    return Encoded(ids, labels, source)


def _exchanges(body: list[dict]) -> list[list[dict]]:
    """Split non-system messages into exchanges, each ending with an assistant turn."""
    out, cur = [], []
    for m in body:
        cur.append(m)
        if m["role"] == "assistant":
            out.append(cur)
            cur = []
    return out


def encode_conversation(tokenizer, messages: Sequence[dict], *, system_prompt: str | None, max_length: int,
                        source: str = "", stats: EncodeStats | None = None) -> list[Encoded]:
    """One conversation → one or more rows of at most `max_length` tokens (split by exchanges)."""
    stats = stats if stats is not None else EncodeStats()
    msgs, replaced = normalise_messages(messages, system_prompt)
    stats.conversations += 1
    stats.system_prompt_replaced += replaced
    head = msgs[:1] if msgs and msgs[0]["role"] == "system" else []
    body = msgs[len(head):]
    if not any(m["role"] == "assistant" for m in body):
        stats.warnings.append(f"{source}: no assistant turn; skipped")
        return []
    whole = encode_messages(tokenizer, msgs, source=source, stats=stats)
    if len(whole) <= max_length:
        rows = [whole]
    else:
        stats.split_conversations += 1
        rows, chunk = [], []
        for exchange in _exchanges(body):
            candidate = chunk + exchange
            if len(encode_messages(tokenizer, head + candidate, source=source)) <= max_length:
                chunk = candidate
                continue
            if chunk:
                rows.append(encode_messages(tokenizer, head + chunk, source=f"{source}#{len(rows) + 1}"))
            if len(encode_messages(tokenizer, head + exchange, source=source)) <= max_length:
                chunk = exchange
            else:
                stats.dropped_exchanges += 1
                stats.warnings.append(f"{source}: an exchange longer than max_length={max_length} tokens was dropped")
                chunk = []
        if chunk:
            rows.append(encode_messages(tokenizer, head + chunk, source=f"{source}#{len(rows) + 1}"))
    rows = [r for r in rows if r.trained_tokens > 0]
    for r in rows:
        stats.examples += 1
        stats.tokens += len(r)
        stats.trained_tokens += r.trained_tokens
    return rows


def encode_dataset(tokenizer, conversations: Iterable[tuple[str, Sequence[dict]]], *, system_prompt: str | None,
                   max_length: int, what: str = "dataset") -> tuple[list[Encoded], EncodeStats]:
    """Encode every conversation; raise `MaskError` when nothing at all would be trained on."""
    stats = EncodeStats()
    rows: list[Encoded] = []
    for source, messages in conversations:
        rows.extend(encode_conversation(tokenizer, messages, system_prompt=system_prompt, max_length=max_length,
                                        source=source, stats=stats))
    if stats.trained_tokens == 0:
        raise MaskError(
            f"{what}: the assistant-token mask is empty ({stats.conversations} conversations, "
            f"{stats.dropped_exchanges} exchanges over max_length={max_length}); refusing to train on nothing"
        )
    if stats.eos_inserted:
        log.warning("the chat template does not end assistant turns with EOS %r; it was added after each turn", eos_text(tokenizer))
    return rows, stats


def encode_jsonl(tokenizer, path: Path, *, system_prompt: str | None, max_length: int) -> tuple[list[Encoded], EncodeStats]:
    return encode_dataset(tokenizer, read_jsonl(path), system_prompt=system_prompt, max_length=max_length, what=str(path))
