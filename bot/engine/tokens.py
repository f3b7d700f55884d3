"""The one token estimate, for whenever no tokenizer can count: about 4 characters a token.

Used by prompt assembly (backends without a tokenizer), the trainer's dataset statistics, synthetic
generation's usage figures and the probes' "ran out of tokens" check, so that every estimate in the
project agrees. Real counts always come from the model's own tokenizer where there is one; this is
the fallback, rounded up (an estimate that undercounts would overfill a context window).
"""
from __future__ import annotations

CHARS_PER_TOKEN = 4
# ChatML-style templates spend a handful of tokens per message on role markers.
MESSAGE_OVERHEAD = 5


def estimate_text_tokens(text: str) -> int:
    """Tokens in `text`, estimated: characters / 4, rounded up (0 for empty text)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_tokens(messages: list[dict]) -> int:
    """Tokens of chat messages, estimated: each message's content plus its template overhead."""
    total = 0
    for m in messages:
        total += MESSAGE_OVERHEAD + estimate_text_tokens(m["content"])
    return total
