"""The whole terminal chain of a digital twin with the tiny model: create → import (a team-written
posts-only Twitter archive, and the real ../shared fixtures) → twin build → every existing command
with --persona → insights (--json keys, a real PNG) → delete, after which no file under the data
directory and no byte of the database file or its WAL holds the twin's words."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.trainer.dataset.test_posts import write_posts_only_archive

PLANTED = "zanzibarquokka"


def write_archive(path):
    """The posts-only archive plus tweets carrying a planted word, to find any copy left after delete."""
    import zipfile

    write_posts_only_archive(path)
    with zipfile.ZipFile(path) as zf:
        tweets = zf.read("data/tweets.js").decode()
        account = zf.read("data/account.js").decode()
    items = json.loads(tweets.split("=", 1)[1])
    for i in range(6):
        items.append({"tweet": {"id_str": str(300 + i), "created_at": f"Mon Oct 0{i + 1} 10:00:00 +0000 2021",
                                "full_text": f"the {PLANTED} number {i} visited my window again 🐾 today, such a character"}})
    path.unlink()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/account.js", account)
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = " + json.dumps(items, ensure_ascii=False))
    return path


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from bot.cli.main import app

    monkeypatch.setenv("PERSONABOT_PERSONAS_DIR", str(REPO / "personas"))
    data = tmp_path / "data"
    runner = CliRunner()

    def invoke(*args, input=None):
        result = runner.invoke(app, ["--data-dir", str(data), *args], input=input)
        return result

    invoke.data = data
    return invoke


def _create(cli, model, name="sam"):
    r = cli("twin", "create", name, "--owner-name", "Sam", "--model", str(model))
    assert r.exit_code == 0, r.output
    return r


def test_twin_chain_on_a_posts_only_archive(cli, tmp_path, tiny_llama_dir):
    _create(cli, tiny_llama_dir)
    again = cli("twin", "create", "sam", "--owner-name", "Sam")
    assert again.exit_code == 1 and "already exists" in again.stderr
    listed = json.loads(cli("personas", "--json").stdout)
    (row,) = [p for p in listed["personas"] if p["name"] == "sam"]
    assert row["origin"] == "member" and row["display_name"] == "Sam (AI twin)" and row["folder"].startswith(str(cli.data))
    assert not (REPO / "personas" / "sam").exists()

    r = cli("import", "twitter", str(write_archive(tmp_path / "twitter.zip")), "--persona", "sam", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["skipped"] == {"quote": 1, "retweet": 1}

    r = cli("twin", "build", "sam", "--max-steps", "2", "--json")
    assert r.exit_code == 0, r.output
    built = json.loads(r.stdout)
    assert built["counts"]["examples_from_posts"] >= 8 and built["counts"]["examples_from_conversations"] == 0
    assert built["version"] == "sam-v1" and built["gate"]["probes"] and built["replies"]
    assert {"probe", "prompt", "reply", "passed"} <= set(built["replies"][0])
    text = cli("twin", "build", "sam", "--max-steps", "1")
    assert text.exit_code == 0 and "from posts" in text.stdout and "held-out loss" in text.stdout

    # Every existing command works with --persona on the twin.
    assert cli("dataset", "build", "--persona", "sam", "--no-prompted-posts").exit_code == 1
    assert cli("dataset", "build", "--persona", "sam").exit_code == 0
    r = cli("train", "--persona", "sam", "--max-steps", "1", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["version"] == "sam-v3"
    assert cli("eval", "--persona", "sam").exit_code in (0, 1)
    versions = json.loads(cli("model", "list", "--persona", "sam", "--json").stdout)["versions"]
    assert [v["name"] for v in versions] == ["sam-v1", "sam-v2", "sam-v3"]
    r = cli("model", "promote", "--persona", "sam", "--version", "sam-v3", "--force", "--no-wait")
    assert r.exit_code == 0, r.output
    chat = cli("chat", "--persona", "sam", input="hey, what's new?\n/quit\n")
    assert chat.exit_code == 0, chat.output

    png = tmp_path / "insights.png"
    r = cli("twin", "insights", "sam", "--png", str(png), "--json", "--examples", "2")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"by_year", "top_words", "top_emoji", "lengths", "side_by_side"} <= set(data)
    assert data["by_year"]["2020"] >= 8 and data["by_year"]["2021"] == 6
    assert [PLANTED, 6] in data["top_words"] and ["🐾", 6] in data["top_emoji"]
    assert all(w not in ("the", "and", "my") for w, _ in data["top_words"])
    assert data["side_by_side"] and all(row["owner"] and row["twin"] is not None for row in data["side_by_side"])
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5000

    refused = cli("twin", "delete", "sam")
    assert refused.exit_code == 2 and (cli.data / "personas" / "sam").is_dir()
    assert cli("twin", "delete", "tim", "--yes").exit_code == 1
    r = cli("twin", "delete", "sam", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert not (cli.data / "personas" / "sam").exists() and not (cli.data / "datasets" / "sam").exists()
    assert not (cli.data / "adapters" / "sam").exists() and not (cli.data / "runs" / "sam").exists()
    for path in cli.data.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
    assert "sam" not in [p["name"] for p in json.loads(cli("personas", "--json").stdout)["personas"]]
    import sqlite3

    conn = sqlite3.connect(cli.data / "personabot.db")
    for table in ("sources", "source_messages", "dataset_versions", "model_versions", "twins", "training_metrics"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    conn.close()


def test_twin_build_on_real_fixtures(cli, shared_dir, tiny_llama_dir):
    fx = shared_dir / "fixtures"
    _create(cli, tiny_llama_dir, "ren")
    for kind, path in [("twitter", fx / "twitter" / "joeamroo__knowledgemaxxing__tweets.js"),
                       ("twitter", fx / "twitter" / "glennjones__twitter-archive-extractor__2013_11.js"),
                       ("discord-package", fx / "discord" / "langchain-ai__langchain__messages.csv")]:
        assert path.is_file(), path
        r = cli("import", kind, str(path), "--persona", "ren")
        assert r.exit_code == 0, r.output
    r = cli("twin", "build", "ren", "--max-steps", "1", "--json")
    assert r.exit_code == 0, r.output
    built = json.loads(r.stdout)
    assert built["counts"]["examples_from_posts"] >= 3 and built["version"] == "ren-v1" and built["gate"]


def test_twin_build_without_sources_is_a_clear_error(cli, tiny_llama_dir):
    _create(cli, tiny_llama_dir, "empty")
    r = cli("twin", "build", "empty")
    assert r.exit_code == 1 and "no imported sources" in r.stderr and "Traceback" not in r.output
    assert cli("twin", "create", "Bad Name!", "--owner-name", "X").exit_code == 1


def test_privacy_forget_deletes_the_members_twins(cli, tmp_path, tiny_llama_dir):
    import asyncio

    from bot.settings import load_settings
    from bot.store import open_db, twins

    assert _create(cli, tiny_llama_dir, "kim").exit_code == 0
    assert cli("import", "twitter", str(write_archive(tmp_path / "t.zip")), "--persona", "kim").exit_code == 0

    async def own():      # as /twin create would have recorded it: kim is member 77's twin
        async with open_db(load_settings(data_dir=cli.data).core.db_path) as db:
            await db.execute("UPDATE twins SET discord_owner_id = '77' WHERE persona = 'kim'")
            await db.commit()

    asyncio.run(own())
    r = cli("privacy", "forget", "--user", "77", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["deleted"]["twins_deleted"] == 1
    assert not (cli.data / "personas" / "kim").exists()
    for path in cli.data.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
