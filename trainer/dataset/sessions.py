"""Sessions and turns: from a conversation's messages to alternating user/assistant turns.

`split_sessions` cuts a conversation where consecutive messages are more than `gap_s` seconds apart
(`total_seconds()` semantics; messages without a time never split). `assemble_turns` turns one
session into chat turns: the owner is the assistant and everyone else the user; consecutive
messages of one role are merged (in group chats each user block is prefixed with the speaker's
pseudonym, "Person 2: ..."); leading assistant turns and trailing user turns are trimmed so the
conversation starts with the user and ends on the assistant. A session with no owner reply (or no
user turn) yields None and the reason is counted. `region` is the phone region of the session's source. Assistant turns that are only filler get
weight 0 (kept as context, not trained on).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from trainer.dataset.cleanup import Cleaner, is_filler
from trainer.dataset.pii import Scrubber


@dataclass(slots=True)
class Msg:
    ts: float | None          # POSIX seconds; naive export times are read as UTC so every source shares one scale
    sender_id: str
    sender_name: str
    is_owner: bool
    kind: str
    text: str


@dataclass
class Thread:
    """One conversation of one source (or of the curated logs)."""
    key: str
    source_id: int | None
    messages: list[Msg]
    members: frozenset = frozenset()        # Discord member ids whose data it holds (curated logs)
    group: bool = False
    posts: bool = False                     # the owner's own posts (see trainer/dataset/posts.py)


@dataclass
class Session:
    key: str
    source_id: int | None
    start: float | None
    end: float | None
    turns: list[dict]
    members: frozenset = frozenset()
    split: str = "train"
    extra: dict = field(default_factory=dict)


def ts_seconds(ts: datetime | None) -> float | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def split_sessions(messages: list[Msg], gap_s: float) -> list[list[Msg]]:
    sessions: list[list[Msg]] = []
    current: list[Msg] = []
    last: float | None = None
    for m in messages:
        if current and m.ts is not None and last is not None and m.ts - last > gap_s:
            sessions.append(current)
            current = []
        current.append(m)
        if m.ts is not None:
            last = m.ts
    if current:
        sessions.append(current)
    return sessions


def assemble_turns(messages: list[Msg], *, group: bool, cleaner: Cleaner, scrubber: Scrubber, stats: Counter,
                   region: str | None = None) -> list[dict] | None:
    blocks: list[list] = []            # [role, [(speaker, text), ...]]
    clean = cleaner.clean
    kept = []
    for m in messages:
        text = clean(m.kind, m.text)
        if text is not None:
            kept.append((m, text))
    texts = scrubber.scrub_many([t for _, t in kept], region)      # = scrub() of each non-empty text
    role = parts = None
    merged = 0
    for (m, _), text in zip(kept, texts):
        if ("assistant" if m.is_owner else "user") == role:
            parts.append((m.sender_name, text))
            merged += 1
        else:
            role = "assistant" if m.is_owner else "user"
            parts = [(m.sender_name, text)]
            blocks.append([role, parts])
    if merged:
        stats["merged_burst_messages"] += merged
    while blocks and blocks[0][0] == "assistant":
        blocks.pop(0)
        stats["trimmed_leading_assistant"] += 1
    while blocks and blocks[-1][0] == "user":
        blocks.pop()
        stats["trimmed_trailing_user"] += 1
    if not blocks:
        return None
    turns = []
    for role, parts in blocks:
        if role == "assistant":
            texts = [t for _, t in parts if t]
            content = "\n".join(texts)          # a burst with real text drops the silence markers in it
            turn = {"role": "assistant", "content": content}
            if content and is_filler(content):
                turn["weight"] = 0
                stats["filler_down_weighted"] += 1
            elif not content:
                stats["silent_turns"] += 1
        else:
            if group:
                lines, previous = [], None
                for speaker, t in parts:
                    if speaker != previous:
                        lines.append(f"{scrubber.pseudonym(speaker)}: {t}")
                        previous = speaker
                    else:
                        lines[-1] += "\n" + t
                content = "\n".join(lines)
            else:
                content = "\n".join(t for _, t in parts)
            turn = {"role": "user", "content": content}
        turns.append(turn)
    return turns
