"""`personabot persona import|export` through the console script, and an imported card chatting."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.support.tavern_cards import png_card, text_payloads, v2_card, v3_card


def run_cli(args, env_extra, stdin="", timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "PERSONABOT_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    return {"PERSONABOT_DATA_DIR": str(tmp_path / "data")}


def test_import_then_export_round_trip(tmp_path, env):
    card = tmp_path / "mara.png"
    card.write_bytes(png_card({"chara": v2_card(), "ccv3": v3_card()}))
    out = run_cli(["persona", "import", str(card), "--json"], env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["name"] == "captain-mara" and report["spec"] == "chara_card_v3" and report["lorebook_entries"] == 5
    assert report["examples"] == 2 and report["avatar"] == "avatar.png" and report["greeting"] is True
    assert (tmp_path / "data" / "personas" / "captain-mara" / "persona.toml").is_file()

    listed = run_cli(["personas", "--json"], env)
    assert any(p["name"] == "captain-mara" and p["origin"] == "member" for p in json.loads(listed.stdout)["personas"])

    again = run_cli(["persona", "import", str(card)], env)
    assert again.returncode == 1 and "a persona called 'captain-mara' already exists" in again.stderr

    exported = tmp_path / "out" / "mara.png"
    out = run_cli(["persona", "export", "captain-mara", "-o", str(exported)], env)
    assert out.returncode == 0, out.stderr
    assert "Exported Captain Mara" in out.stdout and "not fine-tuned" in out.stdout
    payloads = text_payloads(exported.read_bytes())
    assert payloads["ccv3"]["data"]["character_book"] == v3_card()["data"]["character_book"]

    refused = run_cli(["persona", "export", "captain-mara", "-o", str(exported)], env)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    as_json = run_cli(["persona", "export", "tim", "-o", str(tmp_path / "tim.json"), "--json"], env)
    assert json.loads(as_json.stdout)["format"] == "json"
    assert json.loads((tmp_path / "tim.json").read_text())["data"]["name"] == "TIM"

    no_adapter = run_cli(["persona", "export", "tim", "-o", str(tmp_path / "tim.zip"), "--with-adapter"], env)
    assert no_adapter.returncode == 1 and "no adapter folder" in no_adapter.stderr


def test_import_errors_are_one_clear_line(tmp_path, env):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": "X", "description": "y" * 20_001}}))
    out = run_cli(["persona", "import", str(bad)], env)
    assert out.returncode == 1
    assert "bad.json: data.description: 20,001 characters (the limit is 20,000)" in out.stderr
    assert "Traceback" not in out.stderr


def test_help_explains_the_commands(env):
    out = run_cli(["persona", "import", "--help"], env)
    assert out.returncode == 0 and "ccv3" in out.stdout and "--name" in out.stdout
    out = run_cli(["persona", "export", "--help"], env)
    assert "--with-adapter" in out.stdout and "--format" in out.stdout


def test_imported_card_chats_with_the_tiny_model(tmp_path, env, tiny_llama_dir):
    card = tmp_path / "mara.png"
    card.write_bytes(png_card({"chara": v2_card()}))
    out = run_cli(["persona", "import", str(card), "--name", "mara", "--model", str(tiny_llama_dir)], env)
    assert out.returncode == 0, out.stderr
    toml = tmp_path / "data" / "personas" / "mara" / "persona.toml"
    toml.write_text(toml.read_text() + "\n[sampling]\nmax_tokens = 8\ntemperature = 0.0\n", encoding="utf-8")
    result = run_cli(["chat", "--persona", "mara"], env, stdin="Tell me about the lighthouse\n/quit\n")
    assert result.returncode == 0, result.stderr
    greeting, reply = result.stdout.splitlines()   # the card's greeting opens the chat, then the one reply
    assert greeting == "Captain Mara> *Captain Mara looks up from the bar.* Evening, User. Shut that door, the wind bites."
    assert reply.startswith("Captain Mara> ")


@pytest.mark.slow
def test_imported_card_chats_in_character_with_smollm2(tmp_path, env, real_models_dir):
    card = tmp_path / "mara.png"
    card.write_bytes(png_card({"chara": v2_card()}))
    env = dict(env, PERSONABOT_MODELS_DIR=str(real_models_dir))
    assert run_cli(["persona", "import", str(card), "--name", "mara"], env).returncode == 0
    toml = tmp_path / "data" / "personas" / "mara" / "persona.toml"
    toml.write_text(toml.read_text() + "\n[sampling]\nmax_tokens = 80\ntemperature = 0.0\n", encoding="utf-8")
    result = run_cli(["chat", "--persona", "mara"], env, stdin="Who are you, and where are we?\n/quit\n")
    assert result.returncode == 0, result.stderr
    reply = result.stdout.rsplit("Captain Mara> ", 1)[1]   # after the greeting the card opens with
    assert len(reply.split()) >= 4, reply
    assert "User:" not in reply and "<|im" not in reply
    assert any(w in reply.lower() for w in ("mara", "captain", "tavern", "harbour", "harbor", "sea", "ship")), reply


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, env):
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(21 * 1024 * 1024)
    out = run_cli(["persona", "import", str(big)], env)
    assert out.returncode == 1 and "big.json: 21.0 MB is over the 20 MB limit for a card" in out.stderr


def test_delete_removes_a_member_persona_and_everything_kept_for_it(tmp_path, env):
    import asyncio

    from bot.store import consent, exchanges, open_db, registry

    card = tmp_path / "mara.png"
    card.write_bytes(png_card({"chara": v2_card(), "ccv3": v3_card()}))
    assert run_cli(["persona", "import", str(card)], env).returncode == 0
    data = tmp_path / "data"
    adapter = data / "adapters" / "captain-mara" / "captain-mara-v1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (data / "datasets" / "captain-mara").mkdir(parents=True)

    async def plant():
        async with open_db(data / "personabot.db") as db:
            await consent.set_consent(db, "u1", True, "1")
            await exchanges.log_exchange(db, persona="captain-mara", conversation_key="discord:1", user_id="u1",
                                         user_content="PLANTED-WORDS-FOR-MARA", reply_content="Arr")
            await exchanges.log_exchange(db, persona="tim", conversation_key="discord:1", user_id="u1",
                                         user_content="a question for tim", reply_content="an answer")
            await registry.create_version(db, persona="captain-mara", backend="local", base_model="m",
                                          dataset_version=None, adapter_path=str(adapter))

    asyncio.run(plant())
    piped = run_cli(["persona", "delete", "captain-mara"], env)   # no terminal to ask on: --yes is needed
    assert piped.returncode == 2 and "add --yes" in piped.stderr and (data / "personas" / "captain-mara").is_dir()

    out = run_cli(["persona", "delete", "captain-mara", "--yes", "--json"], env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["rows"]["conversations"] == 1 and report["rows"]["model_versions"] == 1 and report["wal_truncated"]
    assert not (data / "personas" / "captain-mara").exists() and not (data / "adapters" / "captain-mara").exists()
    assert not (data / "datasets" / "captain-mara").exists()
    assert not [p for p in (data / "personas").iterdir() if p.name.startswith(".deleting")]
    raw = b"".join(p.read_bytes() for p in data.glob("personabot.db*"))
    assert b"PLANTED-WORDS-FOR-MARA" not in raw and b"a question for tim" in raw
    listed = json.loads(run_cli(["personas", "--json"], env).stdout)["personas"]
    assert "captain-mara" not in [p["name"] for p in listed] and "tim" in [p["name"] for p in listed]

    shipped = run_cli(["persona", "delete", "tim", "--yes"], env)
    assert shipped.returncode == 1 and "shipped persona" in shipped.stderr
    unknown = run_cli(["persona", "delete", "captain-mara", "--yes"], env)
    assert unknown.returncode == 1 and "no member persona called 'captain-mara'" in unknown.stderr
