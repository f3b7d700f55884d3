"""Process-wide logging set-up: plain text lines, or one JSON object per line.

`configure_logging(level, fmt)` is called once by the CLI root. With `fmt="json"` every record
becomes one line `{"ts", "level", "logger", "message"[, "exc"]}`: `json.dumps` escapes newlines, so
a multi-line message or traceback can never split a record across lines.

What the JSON holds is exactly the formatted log message, nothing from the record's extras: the
code logs ids, counts and exception types, never member content, and the libraries whose DEBUG
output carries message bodies or SQL parameters (`CONTENT_LOGGERS`) are kept at INFO.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

#: Libraries whose DEBUG output carries message bodies or SQL parameters (members' words): they
#: stay at INFO whatever the root level, in every command, from the first line logged.
CONTENT_LOGGERS = ("discord", "aiosqlite", "openai", "httpx", "httpx2", "httpcore", "httpcore2")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """One stderr handler on the root logger in the chosen format, with `logging.basicConfig`'s
    rule: a process whose logging is already set up (a host application, pytest) keeps its own."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO), handlers=[handler])
    for name in CONTENT_LOGGERS:
        library = logging.getLogger(name)
        if library.level < logging.INFO:  # NOTSET would inherit DEBUG from the root
            library.setLevel(logging.INFO)
