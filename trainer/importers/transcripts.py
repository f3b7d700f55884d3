"""`transcripts`: plain-text chat transcripts ("User: …" / "TIM: …"), one conversation per file.

Input: a `.txt` file, or a folder searched recursively for `*.txt` (sorted by relative path, which
becomes the conversation key). Each file goes through the same parsing and clean-up as synthetic
generation (`trainer.synth.parse` and `trainer.synth.clean`): label variants and case tolerated,
other persona names normalised to the persona's, same-speaker turns merged, a trailing user turn
trimmed, and conversations dropped for refusal boilerplate, too few turns, empty turns, leaked
labels, runaway repetition or near-duplication. Each dropped file becomes a `Problem` naming the
file and line, counted under its reason in `ParseResult.skipped`; merged turns are counted in
`ParseResult.merged`.

Speakers (`ImportOptions`):
- `speaker_roles` maps labels to 'user' or 'assistant' ({"User": "user", "TIM": "assistant",
  "EVE": "assistant"}). Assistant labels that are names (not generic words such as "Tutor") are
  renamed to the persona's label inside the text too.
- `owner` names the persona's own label(s); the first is the label every assistant turn gets.
  Without it, the first assistant label of `speaker_roles` is used, else the most common inferred one.
- Without `speaker_roles`, common labels are recognised ("User", "Human", "Usr"… for the user;
  "Assistant", "AI", "Bot", "Tutor", "Coach"… for the persona), and any other label that starts
  turns in at least `infer_min_share` of the files is taken as a persona name.

Messages: user turns have `sender_id='user'`, persona turns `sender_id='assistant'` (the owner id).
A deliberately silent persona turn (`[silence]`) is kept as `kind='silence'`, `text=''` only when
the importer is built with `allow_silence=True`; otherwise the file is dropped as `empty_turn`.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import ClassVar

from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage
from trainer.synth.clean import Cleaner, CleanStats
from trainer.synth.parse import ASSISTANT, USER, Speakers

DEFAULT_USER_LABELS = ("User", "Human", "Usr", "Me", "Student", "Learner", "Client", "Friend")
DEFAULT_PERSONA_LABELS = ("Assistant", "AI", "Bot", "Tutor", "Coach", "Teacher")
_GENERIC = {label.lower() for label in DEFAULT_PERSONA_LABELS}
# A label-looking line start used only to infer persona names: "Name:" right at a turn boundary.
_CANDIDATE = re.compile(r"^[*_]{0,3}([A-Z][A-Za-z0-9_]{1,23})[*_]{0,3}[ \t]*:", re.MULTILINE)


class TranscriptsImporter:
    kind: ClassVar[str] = "transcripts"
    description: ClassVar[str] = "Plain-text 'User: …' / 'Persona: …' transcripts, one conversation per .txt file (file or folder)."

    def __init__(self, *, min_turns: int = 4, allow_silence: bool = False, dedup_threshold: float = 0.85,
                 infer_min_share: float = 0.05):
        self.min_turns = min_turns
        self.allow_silence = allow_silence
        self.dedup_threshold = dedup_threshold
        self.infer_min_share = infer_min_share

    def parse(self, path: Path, options: ImportOptions) -> ParseResult:
        return self.parse_with_stats(path, options)[0]

    def parse_with_stats(self, path: Path, options: ImportOptions) -> tuple[ParseResult, CleanStats]:
        """Like `parse`, plus the clean-up's full counts (kept, dropped by reason, merged, trimmed, …)."""
        path = Path(path)
        files = _files(path)
        base = path if path.is_dir() else path.parent
        result = ParseResult()
        texts: list[tuple[str, str]] = []
        for f in files:
            rel = f.relative_to(base).as_posix()
            try:
                text = f.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as exc:
                result.skip(Problem(rel, f"byte {exc.start}", f"not UTF-8 text ({exc.reason}); re-save the file as UTF-8"), "unreadable")
                continue
            except OSError as exc:
                result.skip(Problem(rel, "file", f"cannot read: {exc.strerror}"), "unreadable")
                continue
            if not text.strip():
                result.skip(Problem(rel, "file", "empty file"), "empty")
                continue
            texts.append((rel, text))

        speakers = self._speakers(options, [t for _, t in texts])
        cleaner = Cleaner(speakers, min_turns=self.min_turns, allow_silence=self.allow_silence or options.allow_silence,
                          dedup_threshold=self.dedup_threshold)
        recognised = 0
        for rel, text in texts:
            if not any(speakers.line_label.match(line) for line in text.splitlines()):
                result.skip(Problem(rel, "file", f"no speaker labels found (expected lines starting with e.g. '{speakers.user}:' or '{speakers.persona}:')"), "no_labels")
                continue
            recognised += 1
            cleaned = cleaner.clean(text)
            if not cleaned.kept:
                where = f"line {cleaned.line}" if cleaned.line else "conversation"
                result.skip(Problem(rel, where, f"{cleaned.reason}: {cleaned.detail}"), cleaned.reason)
                continue
            for seq, turn in enumerate(cleaned.turns):
                result.messages.append(RawMessage(
                    conversation=rel, seq=seq, timestamp=None,
                    sender_id=turn.role, sender_name=speakers.persona if turn.role == ASSISTANT else speakers.user,
                    text="" if turn.silence else turn.text, kind="silence" if turn.silence else "text",
                ))
        if files and not recognised and texts:
            raise ImportFormatError(
                f"{path}: no file has speaker labels; expected transcripts with lines like 'User: …' and 'Persona: …' "
                "(name unusual labels with speaker roles, e.g. Coach=assistant)"
            )
        result.merged = cleaner.stats.merged
        result.participants = {USER: speakers.user, ASSISTANT: speakers.persona}
        result.owner_ids = {ASSISTANT}
        return result, cleaner.stats

    def _speakers(self, options: ImportOptions, texts: list[str]) -> Speakers:
        roles = dict(options.speaker_roles)
        for label, role in roles.items():
            if role not in (USER, ASSISTANT):
                raise ImportFormatError(f"speaker role of {label!r} must be 'user' or 'assistant' (got {role!r})")
        assistant = [*options.owner, *(l for l, r in roles.items() if r == ASSISTANT)]
        users = [l for l, r in roles.items() if r == USER]
        if not roles:
            known = {l.lower() for l in (*DEFAULT_USER_LABELS, *DEFAULT_PERSONA_LABELS, *assistant)}
            files_with: Counter = Counter()
            for text in texts:
                files_with.update({m for m in _CANDIDATE.findall(text) if m.lower() not in known})
            needed = max(2, int(len(texts) * self.infer_min_share))
            assistant += [label for label, n in files_with.most_common() if n >= needed]
        if not assistant:
            assistant = ["Assistant"]
        persona = assistant[0]
        user = users[0] if users else "User"
        names = [l for l in assistant[1:] if l.lower() not in _GENERIC and l.lower() != persona.lower()]
        generic = [l for l in (*assistant[1:], *DEFAULT_PERSONA_LABELS) if l.lower() in _GENERIC or l.lower() == persona.lower()]
        return Speakers(
            persona=persona, user=user,
            persona_labels=tuple(dict.fromkeys(generic)),
            user_labels=tuple(dict.fromkeys([*users[1:], *DEFAULT_USER_LABELS])),
            other_personas=tuple(dict.fromkeys(names)),
        )


def _files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() != ".txt":
            raise ImportFormatError(f"{path}: expected a .txt transcript or a folder of them")
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise ImportFormatError(f"{path}: no .txt transcripts in this folder")
        return files
    raise ImportFormatError(f"{path}: not found")
