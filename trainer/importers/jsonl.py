"""OpenAI chat-format JSONL: one `{"messages": [{"role", "content"}, ...]}` per line. The legacy
`{"prompt", "completion"}` lines are accepted too: a labelled prompt ("User: ...\\nTIM:") is split
into turns, the label left open at its end being the assistant's.

Roles are already assigned: the sender id is the role and the owner is "assistant". System
messages are kept as kind 'system' (the build replaces them with the persona's own prompt). An
empty assistant message is deliberate silence (kind 'silence'). Each line is one conversation
named "line N"; a bad line is reported with its number and the rest are imported.
"""
from __future__ import annotations

import json
import re

from trainer.importers._io import Tree, looks_binary
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

EXPECTED = "OpenAI chat JSONL: one {\"messages\": [{\"role\": ..., \"content\": ...}]} object per line"
_ROLES = {"user", "assistant", "system"}
_LABEL = re.compile(r"^([A-Z][\w .'-]{0,30}):(?: (.*)|)$")


def split_labelled(prompt: str) -> tuple[list[tuple[str, str]], str | None]:
    """[(label, text)] turns of a "Label: text" transcript, and the label left open at the end."""
    turns: list[list[str]] = []
    for line in prompt.split("\n"):
        m = _LABEL.match(line)
        if m:
            turns.append([m.group(1), m.group(2) or ""])
        elif turns:
            turns[-1][1] += "\n" + line
    open_label = turns[-1][0] if turns and not turns[-1][1].strip() else None
    if open_label is not None:
        turns.pop()
    return [(label, text.strip()) for label, text in turns], open_label


class JsonlImporter:
    kind = "jsonl"
    description = "OpenAI chat-format JSONL ({\"messages\": [...]} per line; legacy prompt/completion too)."

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(r"\.jsonl?$")
        if not names:
            raise ImportFormatError(f"{path}: no .jsonl file; expected {EXPECTED}")
        result = ParseResult(participants={"user": "user", "assistant": "assistant"}, owner_ids={"assistant"})
        good_lines = bad_lines = 0
        for name in names:
            text = tree.read_text(name)
            file = tree.display(name)
            if looks_binary(text):
                raise ImportFormatError(f"{file}: binary data; expected {EXPECTED}")
            for line_no, line in enumerate(text.split("\n"), 1):
                if not line.strip():
                    continue
                if self._line(line, line_no, file, result):
                    good_lines += 1
                else:
                    bad_lines += 1
        if good_lines == 0 and bad_lines:
            raise ImportFormatError(f"{path}: no line is a chat example (first: {result.problems[0]}); expected {EXPECTED}")
        return result

    def _line(self, line: str, line_no: int, file: str, result: ParseResult) -> bool:
        where = f"line {line_no}"
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            result.skip(Problem(file, where, f"not JSON ({getattr(exc, 'msg', exc)})"), "bad_json")
            return False
        if not isinstance(obj, dict):
            result.skip(Problem(file, where, "not a JSON object"), "bad_record")
            return False
        conversation = f"{file.rsplit('/', 1)[-1]}:{line_no}"
        if "messages" in obj:
            turns = obj["messages"]
            if not isinstance(turns, list) or not turns:
                result.skip(Problem(file, where, "'messages' is not a non-empty list"), "bad_record")
                return False
            pairs = []
            for i, t in enumerate(turns):
                if not isinstance(t, dict) or t.get("role") not in _ROLES or not isinstance(t.get("content", ""), str):
                    result.skip(Problem(file, where, f"message {i}: needs role user/assistant/system and string content"), "bad_message")
                    return False
                pairs.append((t["role"], t.get("content") or ""))
        elif "prompt" in obj and "completion" in obj:
            labelled, open_label = split_labelled(str(obj["prompt"]))
            if not labelled:
                pairs = [("user", str(obj["prompt"]).strip())]
            else:
                assistant = open_label or labelled[-1][0]
                pairs = [("assistant" if label == assistant else "user", text) for label, text in labelled]
            pairs.append(("assistant", str(obj["completion"]).strip()))
        else:
            result.skip(Problem(file, where, "no 'messages' (or 'prompt'/'completion') key"), "bad_record")
            return False
        for seq, (role, content) in enumerate(pairs):
            kind = "system" if role == "system" else ("silence" if role == "assistant" and not content.strip() else "text")
            result.messages.append(RawMessage(conversation, seq, None, role if role != "system" else "system", role, content, kind))
        return True
