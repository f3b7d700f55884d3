"""Parse a plain-text chat transcript ("User: …" / "TIM: …") into turns.

Contract: `parse_transcript(text, speakers)` never raises on content. It returns every turn it
recognised, in order, with the repairs it made counted:

- Labels are found at the start of a line, tolerating case, spaces and markdown: "Tim:", "TIM :",
  "**TIM:**", "**TIM**:", "- TIM:". Lines without a known label continue the current turn, so
  multi-line messages and lists survive (an unknown "Note:" is content, not a speaker).
- Every persona label (its names, other personas' names, generic ones such as "Assistant") is
  normalised to `speakers.persona`; every user label to `speakers.user`. Other personas' names
  that were used as labels are also replaced inside the text ("Hey EVE" → "Hey TIM"), because a
  TIM conversation in which the learner greets EVE teaches the model the wrong name.
- A doubled label of the same speaker ("TIM: TIM: hi") is collapsed.
- Consecutive turns of the same speaker are merged into one (joined by a newline).
- Text before the first label (a writer's preamble) and trailing separator lines are dropped.
- A persona turn that is empty or holds only a silence marker ("[silence]") becomes a turn with
  `silence=True` and `text=''`; whether that is allowed is the clean-up's decision, not ours.

Leaked labels (a label in the middle of a turn, "Hey TIMTIM: hi") are not repaired here; the
clean-up finds them with `find_leaked_label` and drops the conversation, because the text around a
leak is usually garbled too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

USER, ASSISTANT = "user", "assistant"

# Markers a transcript writer may use for "the persona deliberately says nothing".
_SILENCE = re.compile(
    r"^\s*(?:[\[(<*]\s*(?:silence|silent|stays? silent|no (?:reply|response|answer)|says nothing|does not (?:reply|respond))\s*[\])>*]\.?)?\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^\s*(?:-{3,}|\*{3,}|={3,}|_{3,}|`{3,}\w*)\s*$")


@dataclass(frozen=True)
class Speakers:
    """Who may speak in a transcript, and the canonical label of each side."""

    persona: str                                 # canonical persona label, e.g. "TIM"
    user: str = "User"                           # canonical user label
    persona_labels: tuple[str, ...] = ()         # extra labels that mean the persona (aliases, "Assistant", …)
    user_labels: tuple[str, ...] = ()            # extra labels that mean the user ("Usr", "Human", …)
    other_personas: tuple[str, ...] = ()         # other personas' names: labels normalised, and renamed in text

    @cached_property
    def roles(self) -> dict[str, str]:
        """lower-cased label -> role. The user's canonical label wins over a clashing persona label."""
        table: dict[str, str] = {}
        for label in (self.persona, *self.persona_labels, *self.other_personas):
            table.setdefault(_squash(label), ASSISTANT)
        for label in (self.user, *self.user_labels):
            table[_squash(label)] = USER
        table[_squash(self.persona)] = ASSISTANT
        return table

    @cached_property
    def own_labels(self) -> frozenset[str]:
        """Labels that are the persona's or user's own name (others count as relabelled)."""
        return frozenset({_squash(self.persona), _squash(self.user)})

    @cached_property
    def line_label(self) -> re.Pattern:
        alternation = "|".join(
            r"\s*".join(re.escape(part) for part in label.split())
            for label in sorted({lbl for lbl in (self.persona, self.user, *self.persona_labels, *self.user_labels, *self.other_personas) if lbl.strip()}, key=len, reverse=True)
        )
        # Optional bullet/quote marker, optional emphasis around the label (closed after the colon
        # only when it was opened before it, so "TIM: *smiles*" keeps its asterisks).
        return re.compile(
            r"^[ \t]*(?:[-*>#]+[ \t]+)?(?P<open>[*_]{1,3})?[ \t]*(?P<label>" + alternation + r")[ \t]*[*_]{0,3}[ \t]*:"
            r"(?(open)[ \t]*[*_]{0,3})[ \t]?(?P<rest>.*)$",
            re.IGNORECASE,
        )

    @cached_property
    def leak(self) -> re.Pattern:
        """A speaker label inside a turn. Case-sensitive forms of the names only: generic labels
        ("AI", "Me") and lower-case words ("my tutor:") are ordinary prose in the middle of a line."""
        forms: set[str] = set()
        for label in (self.persona, self.user, *self.other_personas, *_name_like(self.persona_labels)):
            for form in (label, label.upper(), label.title()):
                forms.add(form)
        alternation = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        return re.compile(r"(?<![a-z0-9])(?:\*\*)?(?P<label>" + alternation + r")(?:\*\*)?[ \t]*:(?=\s|\*|$)")


def _name_like(labels: tuple[str, ...]) -> list[str]:
    # Aliases such as "Tim" are names and leak like names; generic words are not checked mid-line.
    generic = {"assistant", "ai", "bot", "human", "usr", "me", "tutor", "teacher", "coach", "friend"}
    return [lbl for lbl in labels if lbl.lower() not in generic]


def _squash(label: str) -> str:
    return " ".join(label.lower().split())


@dataclass(frozen=True)
class Turn:
    role: str                   # USER or ASSISTANT
    text: str                   # '' when silence
    silence: bool = False       # the persona deliberately said nothing
    line: int = 0               # 1-based line of the turn's (first) label in the transcript


@dataclass
class ParsedTranscript:
    turns: list[Turn] = field(default_factory=list)
    merged: int = 0             # turns folded into the previous turn of the same speaker
    relabelled: int = 0         # turns whose label was another name (EVE, Tutor, Usr) for that side
    renamed: int = 0            # in-text mentions of another persona's name replaced
    collapsed: int = 0          # doubled labels collapsed ("TIM: TIM:")
    preamble: bool = False      # text before the first label was dropped


def parse_transcript(text: str, speakers: Speakers) -> ParsedTranscript:
    out = ParsedTranscript()
    pattern = speakers.line_label
    raw_turns: list[list] = []          # [role, lines, line_no, label_lower]
    used_other_names: set[str] = set()
    for line_no, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        m = pattern.match(line)
        if m is None:
            if raw_turns:
                raw_turns[-1][1].append(line.rstrip())
            elif line.strip():
                out.preamble = True
            continue
        label = _squash(m.group("label"))
        role = speakers.roles[label]
        rest = m.group("rest")
        # "TIM: TIM: hi" — the writer repeated the label; keep one.
        while (again := pattern.match(rest)) and speakers.roles[_squash(again.group("label"))] == role:
            rest = again.group("rest")
            out.collapsed += 1
        if label not in speakers.own_labels:
            out.relabelled += 1
            if label in {_squash(o) for o in speakers.other_personas}:
                used_other_names.add(m.group("label").strip())
        raw_turns.append([role, [rest.rstrip()], line_no, label])

    for role, lines, line_no, _label in raw_turns:
        while lines and (not lines[-1].strip() or _SEPARATOR.match(lines[-1])):
            lines.pop()
        body = "\n".join(lines).strip()
        body = re.sub(r"\n{3,}", "\n\n", body)
        silence = role == ASSISTANT and bool(_SILENCE.match(body))
        if silence:
            body = ""
        elif used_other_names:
            for name in used_other_names:
                body, n = re.subn(rf"(?<!\w){re.escape(name)}(?!\w)", speakers.persona, body)
                out.renamed += n
        turn = Turn(role, body, silence, line_no)
        if out.turns and out.turns[-1].role == role:
            prev = out.turns[-1]
            out.merged += 1
            if prev.silence or turn.silence:
                # Silence followed by words (or the reverse) is not silence: keep the words.
                keep = turn if prev.silence else prev
                out.turns[-1] = Turn(role, keep.text, keep.silence and prev.silence, prev.line)
            else:
                out.turns[-1] = Turn(role, f"{prev.text}\n{turn.text}".strip(), False, prev.line)
            continue
        out.turns.append(turn)
    return out


def find_leaked_label(turn: Turn, speakers: Speakers) -> str | None:
    """The first speaker label found inside a turn's text, or None."""
    m = speakers.leak.search(turn.text)
    return m.group("label") if m else None
