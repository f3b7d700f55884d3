"""`personabot import` and `personabot dataset build|validate|list` through the real CLI app."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.trainer.dataset.conftest import OWNER, write_chat


def run(*args):
    from bot.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_import_build_validate(settings, tmp_path):
    chat = write_chat(tmp_path / "WhatsApp Chat with Friends.txt")
    r = run("import", "whatsapp", str(chat), "--persona", "twin", "--owner", OWNER, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["created"] and report["counts"]["imported"] > 0
    again = run("import", "whatsapp", str(chat), "--persona", "twin", "--owner", OWNER)
    assert again.exit_code == 0 and "Already imported" in again.stdout
    b = run("dataset", "build", "--persona", "twin", "--json")
    assert b.exit_code == 0, b.output
    built = json.loads(b.stdout)
    assert built["version"] == 1 and built["counts"]["train_examples"] > 0
    v = run("dataset", "validate", str(tmp_path / "data" / "datasets" / "twin" / "v1" / "train.jsonl"), "--persona", "twin", "--json")
    assert v.exit_code == 0 and json.loads(v.stdout)["ok"]
    listed = run("dataset", "list", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "ok"


def test_wrong_kind_and_bad_file_are_one_line_errors(settings, tmp_path):
    chat = write_chat(tmp_path / "chat.txt", 3)
    r = run("import", "telegram", str(chat), "--persona", "twin")
    assert r.exit_code == 2
    assert "Traceback" not in r.output and "expected a Telegram Desktop export" in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    v = run("dataset", "validate", str(bad))
    assert v.exit_code == 1 and "last_not_assistant" in v.stdout


def test_region_option_on_import_and_build(settings, tmp_path):
    chat = write_chat(tmp_path / "chat.txt", 4)
    bad = run("import", "whatsapp", str(chat), "--persona", "twin", "--owner", OWNER, "--region", "XX")
    assert bad.exit_code == 2 and "--region 'XX' is not a region" in bad.output
    r = run("import", "whatsapp", str(chat), "--persona", "twin", "--owner", OWNER, "--region", "gb")
    assert r.exit_code == 0 and "Phone region for PII: GB (--region)" in r.stdout, r.output
    b = run("dataset", "build", "--persona", "twin", "--region", "Narnia")
    assert b.exit_code == 2 and "'Narnia' is not a region" in b.output
    b = run("dataset", "build", "--persona", "twin", "--region", "DE", "--json")
    assert b.exit_code == 0 and set(json.loads(b.stdout)["phone_regions"].values()) == {"DE"}, b.output
