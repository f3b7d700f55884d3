"""The importer contract.

An importer turns one export (file or folder) into a `ParseResult`: messages in order, the problems
it met (each naming the file and the line or record), the participants' names (for consistent
pseudonyms), the owner's sender ids, and where the export shows it, the phone region its national
numbers are written in (`region`, `region_from`: a participant's or the owner's +CC number, the
account's phone or locale, the language of its system lines). It never raises on a bad record: it records a `Problem`
and goes on. It raises `ImportFormatError` only when the input is not that kind of export at all,
with a one-line message saying what was expected.

Importers are pure: they do not touch the database; `trainer.sources.save_source` stores results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol

MESSAGE_KINDS = ("text", "media", "link", "system", "silence")


@dataclass(slots=True)
class RawMessage:
    conversation: str                 # chat/thread key within the export
    seq: int                          # order within the conversation, as the export intends (oldest first)
    timestamp: datetime | None        # timezone-aware when the export says so; None when it has no time
    sender_id: str                    # stable id (never a name substring when the export has ids)
    sender_name: str
    text: str                         # punctuation, emoji and newlines kept: they are the style
    kind: str = "text"                # one of MESSAGE_KINDS
    reply_to: str | None = None       # external id of the parent message, when known
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    location: str                     # "line 12", "message 7", "record 3"
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.location}: {self.reason}"


@dataclass
class ParseResult:
    messages: list[RawMessage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    participants: dict[str, str] = field(default_factory=dict)   # sender id -> display name
    owner_ids: set[str] = field(default_factory=set)
    merged: int = 0                                              # records folded into others (e.g. continuation lines)
    skipped: dict[str, int] = field(default_factory=dict)        # reason -> count (also reflected in problems)
    region: str | None = None                                    # phone region the export suggests ("GB"), for PII
    region_from: str | None = None                               # what suggested it ("owner's number", "locale de")

    def skip(self, problem: Problem, reason_key: str) -> None:
        self.problems.append(problem)
        self.skipped[reason_key] = self.skipped.get(reason_key, 0) + 1


@dataclass(frozen=True)
class ImportOptions:
    owner: tuple[str, ...] = ()                 # owner ids, or explicit aliases (exact match, never substring)
    date_order: str | None = None               # 'dmy' | 'mdy' | 'ymd' to override inference (WhatsApp)
    speaker_roles: dict[str, str] = field(default_factory=dict)   # transcripts: speaker label -> 'user'|'assistant'
    prompt_column: str = "prompt"               # csv
    response_column: str = "response"           # csv
    allow_silence: bool = False                 # the persona may stay silent: keep deliberately empty replies
    region: str | None = None                   # phone region for national numbers ("GB"); beats the export's hint


class ImportFormatError(ValueError):
    """The input is not this kind of export at all. The message is one line saying what was expected."""


class Importer(Protocol):
    kind: ClassVar[str]            # the KIND argument of `personabot import`
    description: ClassVar[str]     # one line for --help
    # Optional `posts: ClassVar[bool] = True`: the export holds the owner's own posts (a monologue),
    # so sessions without anyone else's words become prompted-post examples (trainer/dataset/posts.py).

    def parse(self, path: Path, options: ImportOptions) -> ParseResult: ...
