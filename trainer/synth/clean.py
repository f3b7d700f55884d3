"""Clean-up of parsed transcripts: keep a conversation, repaired, or drop it for one named reason.

Contract: `Cleaner.clean(raw_text)` parses the transcript (see `parse.py`), repairs what can be
repaired, and returns a `Cleaned` with either the final turns or the drop reason. Every call is
counted in `Cleaner.stats`: kept, and dropped by reason, plus the repairs made to kept
conversations. Reasons are checked in the order of `DROP_REASONS`, and a conversation is counted
once, under the first reason that applies:

- `refusal`: the writer's refusal boilerplate ("As an AI language model…") anywhere in the text.
- `too_few_turns`: fewer than `min_turns` turns after merging and trimming the trailing user turn.
- `empty_turn`: a user turn without text, or a silent persona turn for a persona that may not stay
  silent.
- `all_silent`: every persona turn is silent (nothing to learn but silence).
- `leaked_label`: a speaker label inside a turn ("Hey TIMTIM: hi", "…and then User: ok").
- `repetition`: runaway repetition (a looping phrase, or the same message over and over).
- `near_duplicate`: a MinHash near-duplicate (or exact duplicate) of a conversation seen earlier
  by this cleaner, including those passed to `remember`.

The order matters for the counts only; the set of kept conversations does not depend on it. The
near-duplicate check comes last so that only kept conversations are remembered.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from trainer.dedup import Deduplicator
from trainer.synth.parse import ASSISTANT, USER, Speakers, Turn, find_leaked_label, parse_transcript

DROP_REASONS = ("refusal", "too_few_turns", "empty_turn", "all_silent", "leaked_label", "repetition", "near_duplicate")

_REFUSAL = re.compile(
    r"as an ai(?: language)? model"
    r"|as a (?:large )?language model"
    r"|as an ai(?: assistant)?,"
    r"|i(?:'m| am) (?:just )?an ai (?:language model|assistant)"
    r"|i(?:'m| am) (?:sorry|afraid),? (?:but )?i (?:can(?:'|no)t|am unable to|won't|will not) (?:help|assist|comply|fulfil|create|write|generate|provide|continue)"
    r"|i can(?:'|no)t (?:assist|help) with (?:that|this)(?: request)?"
    r"|(?:violates?|against) (?:the |my )?(?:openai )?(?:content |usage )?polic",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_LOOP_UNIT = 24         # longest repeating unit looked for, in words


def _word_loop(words: list[str]) -> bool:
    """A unit of 1–24 words repeated back to back, four times or over 12+ words ("I love it! I love it! …")."""
    n = len(words)
    for period in range(1, min(_MAX_LOOP_UNIT, n // 4) + 1):
        needed = max(3 * period, 12)
        run = 0
        for i in range(n - period):
            run = run + 1 if words[i] == words[i + period] else 0
            if run >= needed:
                return True
    return False


@dataclass
class CleanStats:
    seen: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    # Repairs made to kept conversations:
    merged: int = 0             # same-speaker turns merged
    trimmed: int = 0            # trailing user turns removed
    relabelled: int = 0         # turns whose label was normalised (EVE → TIM, Usr → User)
    renamed: int = 0            # in-text mentions of another persona's name replaced
    collapsed: int = 0          # doubled labels collapsed
    preambles: int = 0          # writer preambles removed
    silence_turns: int = 0      # deliberately empty persona turns kept

    def as_dict(self) -> dict:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": {r: self.dropped[r] for r in DROP_REASONS if self.dropped[r]},
            "dropped_total": sum(self.dropped.values()),
            "merged": self.merged,
            "trimmed": self.trimmed,
            "relabelled": self.relabelled,
            "renamed": self.renamed,
            "collapsed": self.collapsed,
            "preambles": self.preambles,
            "silence_turns": self.silence_turns,
        }


@dataclass(frozen=True)
class Cleaned:
    turns: list[Turn] | None        # None when dropped
    reason: str | None = None       # one of DROP_REASONS when dropped
    detail: str = ""                # where/why, for problem reports ("line 7: 'TIM:'")
    line: int = 0                   # transcript line the detail refers to (0: the whole conversation)

    @property
    def kept(self) -> bool:
        return self.turns is not None


def find_refusal(text: str) -> re.Match | None:
    return _REFUSAL.search(text.replace("\u2019", "'"))


def find_repetition(text: str) -> str | None:
    """Why `text` looks like runaway generation, or None."""
    words = [w.lower() for w in _WORD.findall(text)]
    if _word_loop(words):
        return "a phrase repeats back to back"
    if len(words) >= 24:
        grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
        # Natural text has almost no repeated 4-grams; a loop makes most of them repeats.
        if len(set(grams)) / len(grams) < 0.5:
            return "most word 4-grams repeat"
    return None


def conversation_text(turns: list[Turn]) -> str:
    """The text used for near-duplicate detection: every turn, labelled by role."""
    return "\n".join(f"{t.role}: {t.text}" for t in turns)


class Cleaner:
    """Stateful clean-up for one batch (a generation run or an import): counts and remembers."""

    def __init__(self, speakers: Speakers, *, min_turns: int = 4, allow_silence: bool = False,
                 dedup_threshold: float = 0.85, seed: int = 1):
        self.speakers = speakers
        self.min_turns = min_turns
        self.allow_silence = allow_silence
        self.dedup = Deduplicator(threshold=dedup_threshold, seed=seed)
        self.stats = CleanStats()

    def remember(self, turns: list[Turn]) -> None:
        """Make an earlier conversation (e.g. kept by a previous run) count for near-duplicates."""
        self.dedup.is_new(conversation_text(turns))

    def _drop(self, reason: str, detail: str = "", line: int = 0) -> Cleaned:
        self.stats.dropped[reason] += 1
        return Cleaned(None, reason, detail, line)

    def clean(self, raw: str) -> Cleaned:
        self.stats.seen += 1
        if m := find_refusal(raw):
            line = raw.count("\n", 0, m.start()) + 1
            return self._drop("refusal", f"line {line}: {m.group(0)!r}", line)

        parsed = parse_transcript(raw, self.speakers)
        turns = list(parsed.turns)
        trimmed = 0
        # The conversation must end on the persona: a dangling user message teaches nothing.
        while turns and turns[-1].role == USER:
            turns.pop()
            trimmed += 1

        if len(turns) < self.min_turns:
            return self._drop("too_few_turns", f"{len(turns)} turns after clean-up, need {self.min_turns}")
        for t in turns:
            if t.role == USER and not t.text:
                return self._drop("empty_turn", f"line {t.line}: empty {self.speakers.user} turn", t.line)
            if t.role == ASSISTANT and not t.silence and not t.text:
                return self._drop("empty_turn", f"line {t.line}: empty {self.speakers.persona} turn", t.line)
            if t.silence and not self.allow_silence:
                return self._drop("empty_turn", f"line {t.line}: silent {self.speakers.persona} turn, but the persona may not stay silent", t.line)
        if all(t.silence for t in turns if t.role == ASSISTANT):
            return self._drop("all_silent", "every persona turn is silent")
        for t in turns:
            if (label := find_leaked_label(t, self.speakers)) is not None:
                return self._drop("leaked_label", f"line {t.line}: label {label + ':'!r} inside a {t.role} turn", t.line)
        for t in turns:
            if t.text and (why := find_repetition(t.text)):
                return self._drop("repetition", f"line {t.line}: {why}", t.line)
        counts = Counter((t.role, t.text.lower()) for t in turns if t.text)
        (role_text, n), = counts.most_common(1)
        if n >= 3:
            return self._drop("repetition", f"the same {role_text[0]} message appears {n} times")
        if not self.dedup.is_new(conversation_text(turns)):
            return self._drop("near_duplicate", "a near-duplicate of an earlier conversation")

        s = self.stats
        s.kept += 1
        s.merged += parsed.merged
        s.trimmed += trimmed
        s.relabelled += parsed.relabelled
        s.renamed += parsed.renamed
        s.collapsed += parsed.collapsed
        s.preambles += int(parsed.preamble)
        s.silence_turns += sum(t.silence for t in turns)
        return Cleaned(turns)
