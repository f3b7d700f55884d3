"""The conversation engine: prompt assembly under a token budget, streaming, output clean-up.

It knows nothing of Discord: callers hand it a `PersonaSpec` and a list of `Turn` dataclasses and
get back a `ReplyStream` of cleaned text deltas and, at the end, a `Reply`.
"""
from bot.engine.types import Turn, Reply
from bot.engine.engine import ChatEngine, ReplyStream

__all__ = ["Turn", "Reply", "ChatEngine", "ReplyStream"]
