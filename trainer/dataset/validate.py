"""Validation of chat-format examples, after the OpenAI cookbook's data-preparation checks.

Per example it counts the cookbook's error keys (`data_type`, `missing_messages_list`,
`message_missing_key`, `message_unrecognized_key`, `unrecognized_role`, `missing_content`,
`example_missing_assistant_message`) plus `not_alternating` (after an optional system message,
user and assistant alternate, starting with user), `last_not_assistant`, `invalid_weight` and
`too_long` (over the token limit). An empty assistant message is deliberate silence when
`allow_silence` is set (personas that may stay silent) and an error otherwise. It also reports
distributions of messages, tokens and assistant tokens per example and the cookbook's epoch and
billed-token estimate. `Validator.add` is fed one parsed line at a time, so files of any size work.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from trainer.dataset.tokens import MESSAGE_OVERHEAD, TokenCounter

ERROR_KEYS = ("data_type", "missing_messages_list", "message_missing_key", "message_unrecognized_key", "unrecognized_role",
              "missing_content", "example_missing_assistant_message", "not_alternating", "last_not_assistant",
              "invalid_weight", "too_long", "invalid_json")
_ALLOWED_KEYS = {"role", "content", "name", "function_call", "weight"}
_ROLES = {"system", "user", "assistant", "function"}
# Cookbook defaults for the epoch estimate.
TARGET_EPOCHS, MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES, MIN_EPOCHS, MAX_EPOCHS = 3, 100, 25000, 1, 25


def _stats(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "max": 0, "mean": 0, "median": 0, "p5": 0, "p95": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]
    return {"min": ordered[0], "max": ordered[-1], "mean": round(statistics.fmean(ordered), 1),
            "median": pick(0.5), "p5": pick(0.05), "p95": pick(0.95)}


def example_errors(example, *, allow_silence: bool = False) -> list[str]:
    """Error keys for one example (empty when it is valid, too_long aside)."""
    if not isinstance(example, dict):
        return ["data_type"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    errors: list[str] = []
    roles = []
    for message in messages:
        if not isinstance(message, dict):
            errors.append("data_type")
            continue
        if "role" not in message or "content" not in message:
            errors.append("message_missing_key")
        if not _ALLOWED_KEYS.issuperset(message):
            errors.append("message_unrecognized_key")
        role = message.get("role")
        if role not in _ROLES:
            errors.append("unrecognized_role")
        roles.append(role)
        content = message.get("content")
        if not isinstance(content, str) or (not content and not message.get("function_call")):
            if not (allow_silence and role == "assistant" and content == ""):
                errors.append("missing_content")
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            errors.append("invalid_weight")
    if "assistant" not in roles:
        errors.append("example_missing_assistant_message")
    body = roles[1:] if roles and roles[0] == "system" else roles
    if any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(body)):
        errors.append("not_alternating")
    if not roles or roles[-1] != "assistant":
        errors.append("last_not_assistant")
    return list(dict.fromkeys(errors))


@dataclass
class Validator:
    counter: TokenCounter = field(default_factory=TokenCounter)
    max_tokens: int = 4096
    allow_silence: bool = False
    errors: Counter = field(default_factory=Counter)
    error_lines: list[str] = field(default_factory=list)
    n_examples: int = 0
    n_messages: list[int] = field(default_factory=list)
    n_tokens: list[int] = field(default_factory=list)
    n_assistant_tokens: list[int] = field(default_factory=list)
    silent_turns: int = 0

    def add(self, example, where: str = "") -> list[str]:
        self.n_examples += 1
        errs = example_errors(example, allow_silence=self.allow_silence)
        if not errs or errs == ["too_long"]:
            messages = example["messages"]
            contents = [m.get("content") or "" for m in messages]
            counts = self.counter.count_many(contents)
            total = sum(counts) + MESSAGE_OVERHEAD * len(messages) + 1
            self.n_messages.append(len(messages))
            self.n_tokens.append(total)
            self.n_assistant_tokens.append(sum(c for c, m in zip(counts, messages) if m.get("role") == "assistant"))
            self.silent_turns += sum(1 for m in messages if m.get("role") == "assistant" and m.get("content") == "")
            if total > self.max_tokens:
                errs.append("too_long")
        for e in errs:
            self.errors[e] += 1
        if errs and len(self.error_lines) < 200:
            self.error_lines.append(f"{where}: {', '.join(errs)}")
        return errs

    def add_invalid_json(self, where: str, reason: str) -> None:
        self.n_examples += 1
        self.errors["invalid_json"] += 1
        if len(self.error_lines) < 200:
            self.error_lines.append(f"{where}: invalid_json ({reason})")

    def report(self, epochs: float | None = None) -> dict:
        n = len(self.n_tokens)
        if epochs is None:
            epochs = TARGET_EPOCHS
            if n and n * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
                epochs = min(MAX_EPOCHS, MIN_TARGET_EXAMPLES // n)
            elif n and n * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
                epochs = max(MIN_EPOCHS, MAX_TARGET_EXAMPLES // n)
        billed = sum(min(self.max_tokens, t) for t in self.n_tokens)
        return {
            "examples": self.n_examples,
            "valid_examples": n - self.errors.get("too_long", 0),
            "errors": {k: self.errors[k] for k in ERROR_KEYS if self.errors.get(k)},
            "error_lines": self.error_lines[:50],
            "ok": not self.errors,
            "tokenizer": self.counter.name,
            "max_tokens": self.max_tokens,
            "silent_assistant_turns": self.silent_turns,
            "distributions": {"messages": _stats(self.n_messages), "tokens": _stats(self.n_tokens),
                              "assistant_tokens": _stats(self.n_assistant_tokens)},
            "over_max_tokens": sum(1 for t in self.n_tokens if t > self.max_tokens),
            "estimate": {"epochs": epochs, "tokens_per_epoch": billed, "billed_tokens": int(billed * epochs)},
        }


def validate_file(path: Path, validator: Validator) -> dict:
    """Validate a JSONL file line by line; a line that is not JSON is an error, not a crash."""
    path = Path(path)
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                example = json.loads(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                validator.add_invalid_json(where, str(getattr(exc, "msg", exc))[:80])
                continue
            validator.add(example, where)
    return validator.report()
