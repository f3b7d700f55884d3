"""JSON logs: one object per line, whatever the message or traceback holds."""
import json
import logging
import subprocess
import sys
from pathlib import Path

from bot.observability.logs import JsonFormatter

REPO = Path(__file__).resolve().parents[3]


def _record(msg, *args, exc_info=None):
    return logging.LogRecord("bot.x", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_json_formatter_keeps_one_record_on_one_line():
    try:
        raise ValueError("two\nlines")
    except ValueError:
        exc_info = sys.exc_info()
    line = JsonFormatter().format(_record("a %s\nb \"quoted\" ✓", "x", exc_info=exc_info))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == 'a x\nb "quoted" ✓'
    assert entry["level"] == "WARNING" and entry["logger"] == "bot.x" and entry["ts"].endswith("+00:00")
    assert "ValueError: two\nlines" in entry["exc"]


def test_cli_with_log_format_json_writes_only_json_lines(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PERSONABOT_LOG_FORMAT": "json",
           "PERSONABOT_DATA_DIR": str(tmp_path / "data")}
    code = ("import logging, sys; from bot.cli.main import app\n"
            "@app.command('emit-test-log')\n"
            "def emit():\n    logging.getLogger('bot.test').info('hello\\nworld')\n"
            "app(['--log-level', 'DEBUG', 'emit-test-log'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    entries = [json.loads(l) for l in lines]   # every line is one JSON object
    assert {"level": "INFO", "logger": "bot.test", "message": "hello\nworld"}.items() <= entries[-1].items()
