"""Streaming clean-up of model output.

Small and fine-tuned models drift into transcript mode: they prefix their reply with their own
label ("TIM: TIM: Hello"), or carry on and write the member's next turn ("...\nUser: thanks!").
`StreamCleaner` removes the first and cuts at the second, and at any stop sequence, while text is
still streaming. It holds back only the few characters that might still turn into a label or a
stop sequence, so what has been shown never has to be taken back.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from bot.backends.stops import held_back

# Template control tokens that sometimes leak into decoded text.
CONTROL_STOPS = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "</s>")

# Markdown emphasis and spaces that may surround a label: "**TIM:**", "TIM :".
_DECOR = r"[ \t]*(?:\*\*|__|\*|_)?[ \t]*"


def _label_alternation(labels: list[str]) -> str:
    unique = sorted({l.strip() for l in labels if l.strip()}, key=len, reverse=True)
    return "|".join(re.escape(l) for l in unique)


@functools.lru_cache(maxsize=4096)
def _label_patterns(own_labels: tuple[str, ...], other_labels: tuple[str, ...]) -> tuple[re.Pattern | None, re.Pattern | None]:
    """The label regexes for one set of labels; a conversation asks for the same set every turn."""
    own = _label_alternation(list(own_labels))
    other = _label_alternation(list(other_labels))
    # One or more own labels at a line start ("TIM: TIM: hi").
    own_re = re.compile(rf"(?im)^(?:{_DECOR}(?:{own}){_DECOR}:{_DECOR})+") if own else None
    # A member's label at a line start: the model is writing their turn.
    other_re = re.compile(rf"(?im)(?:^|\n){_DECOR}(?:{other}){_DECOR}:") if other else None
    return own_re, other_re


@dataclass
class StreamCleaner:
    """Feed raw deltas with `feed`; it returns the cleaned text that is now safe to show."""

    own_labels: list[str]                       # the persona's labels, stripped when they open a line
    other_labels: list[str]                     # member labels: a line opening with one ends the reply
    stops: list[str] = field(default_factory=list)
    raw: str = ""
    emitted: str = ""
    stopped_by: str | None = None

    def __post_init__(self) -> None:
        self.stops = [s for s in dict.fromkeys([*self.stops, *CONTROL_STOPS]) if s]
        self._own_re, self._other_re = _label_patterns(tuple(self.own_labels), tuple(self.other_labels))
        self._label_prefixes = [l.lower() for l in [*self.own_labels, *self.other_labels] if l.strip()]

    @property
    def done(self) -> bool:
        return self.stopped_by is not None

    def feed(self, delta: str) -> str:
        if self.done:
            return ""
        self.raw += delta
        return self._advance(final=False)

    def finish(self) -> str:
        """Flush what was held back at the end of the stream."""
        return self._advance(final=True)

    @property
    def text(self) -> str:
        return self.emitted

    # -- internals ---------------------------------------------------------------------------

    def _cut(self, raw: str) -> str:
        """Cut at the earliest stop sequence or member label."""
        cut, why = len(raw), None
        for stop in self.stops:
            i = raw.find(stop)
            if 0 <= i < cut:
                cut, why = i, stop
        if self._other_re is not None:
            m = self._other_re.search(raw)
            if m and m.start() < cut:
                cut, why = m.start(), m.group(0).strip()
        if why is not None:
            self.stopped_by = why
        return raw[:cut]

    def _could_become_marker(self, tail: str) -> bool:
        """Could this unfinished last line still become a label?"""
        bare = tail.lstrip(" \t*_").lower()
        if not bare:
            return True
        for label in self._label_prefixes:
            if label.startswith(bare.rstrip(" \t*_:")) or bare.startswith(label):
                # Either still typing the label, or the label is there and the colon may follow.
                rest = bare[len(label):] if bare.startswith(label) else ""
                if rest.strip(" \t*_") in ("", ":") and ":" not in rest:
                    return True
        return False

    def _hold_back(self, text: str) -> int:
        """How many trailing characters to keep back until the next delta."""
        hold = held_back(text, self.stops)
        line_start = text.rfind("\n") + 1
        tail = text[line_start:]
        if self._own_re is not None:
            # "TIM: TIM" may still be growing a second label after the first.
            tail = self._own_re.sub("", tail)
        if self._could_become_marker(tail):
            hold = max(hold, len(text) - line_start + (1 if line_start else 0))
        return min(hold, len(text))

    def _advance(self, final: bool) -> str:
        text = self._cut(self.raw)
        if not final and not self.done:
            text = text[: len(text) - self._hold_back(text)]
        if self._own_re is not None:
            text = self._own_re.sub("", text)
        text = text.lstrip()
        # Trailing whitespace is shown with the text that follows it, or dropped at the end.
        text = text.rstrip()
        if not text.startswith(self.emitted):
            # Never take back what was shown; later text is appended after it.
            common = len(self.emitted)
            text = self.emitted + text[common:] if len(text) > common else self.emitted
        delta = text[len(self.emitted):]
        self.emitted = text
        return delta
