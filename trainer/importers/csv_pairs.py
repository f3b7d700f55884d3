"""CSV of prompt/response pairs: each row is one exchange (user prompt, assistant response).

Column names come from `--prompt-column`/`--response-column` (default `prompt`/`response`,
matched case-insensitively); the delimiter is sniffed (comma, semicolon, tab). A row with an empty
prompt or response is reported with its line number and skipped.
"""
from __future__ import annotations

import csv
import io

from trainer.importers._io import Tree, looks_binary
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage


class CsvPairsImporter:
    kind = "csv"
    description = "CSV of prompt/response pairs (column names by --prompt-column/--response-column)."

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(r"\.(csv|tsv)$")
        expected = f"a CSV file with columns {options.prompt_column!r} and {options.response_column!r}"
        if not names:
            raise ImportFormatError(f"{path}: no .csv file; expected {expected}")
        result = ParseResult(participants={"user": "user", "assistant": "assistant"}, owner_ids={"assistant"})
        for name in names:
            file = tree.display(name)
            text = tree.read_text(name)
            if looks_binary(text) or not text.strip():
                raise ImportFormatError(f"{file}: {'empty file' if not text.strip() else 'binary data'}; expected {expected}")
            try:
                dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(io.StringIO(text), dialect=dialect)
            fields = {f.strip().lower(): f for f in (reader.fieldnames or []) if f}
            p_col, r_col = fields.get(options.prompt_column.lower()), fields.get(options.response_column.lower())
            if p_col is None or r_col is None:
                found = ", ".join(repr(f) for f in (reader.fieldnames or [])[:10]) or "none"
                raise ImportFormatError(f"{file}: columns {found}; expected {expected} (set --prompt-column/--response-column)")
            try:
                for row in reader:
                    line = reader.line_num
                    prompt, response = (row.get(p_col) or "").strip(), (row.get(r_col) or "").strip()
                    if not prompt or not response:
                        result.skip(Problem(file, f"line {line}", f"empty {'prompt' if not prompt else 'response'}"), "empty")
                        continue
                    conversation = f"{name}:{line}"
                    result.messages.append(RawMessage(conversation, 0, None, "user", "user", prompt))
                    result.messages.append(RawMessage(conversation, 1, None, "assistant", "assistant", response))
            except csv.Error as exc:
                result.skip(Problem(file, f"line {reader.line_num}", f"CSV error: {exc}"), "bad_csv")
        return result
