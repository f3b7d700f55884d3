"""`personabot doctor` on a good configuration and on a broken one, against a loopback vLLM."""
import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import pytest

from bot.cli.doctor import token_problem
from bot.store import open_db, registry
from tests.support.openai_server import BASE_MODEL, FakeOpenAIServer

REPO = Path(__file__).resolve().parents[3]
BOT_ID = "1234567890123456789"
GOOD_TOKEN = base64.urlsafe_b64encode(BOT_ID.encode()).decode().rstrip("=") + ".GaBcDe." + "x" * 38


@pytest.mark.parametrize("token,expected", [
    (GOOD_TOKEN, None),
    ("Bot " + GOOD_TOKEN, "starts with 'Bot '"),
    (f'"{GOOD_TOKEN}"', "quotes"),
    (GOOD_TOKEN + "\n", "spaces or a newline"),
    (BOT_ID, "application or user id"),
    ("a" * 32, "client secret"),
    ("not-a-token", "shape of a bot token"),
    ("aGVsbG8gd29ybGQsIGJvdCE.GaBcDe." + "x" * 38, "not the bot's id"),
])
def test_token_problems(token, expected):
    problem = token_problem(token)
    assert (problem is None) if expected is None else (expected in problem)


def _persona(folder: Path, name: str, text: str) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "persona.toml").write_text(text, encoding="utf-8")


async def _doctor(tmp_path: Path, env: dict) -> tuple[int, list[dict], str]:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path), **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli.main", "doctor", "--json", env=full,
                                                cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, json.loads(out), out.decode() + err.decode()


def _by_check(rows):
    return {r["check"]: r for r in rows}


async def test_doctor_on_a_good_configuration(tmp_path):
    personas = tmp_path / "personas"
    _persona(personas, "sage", f'display_name = "Sage"\nsystem_prompt = "You are Sage."\n'
                               f'[model]\nbackend = "vllm"\nmodel = "{BASE_MODEL}"\n')
    data = tmp_path / "data"
    async with FakeOpenAIServer() as server:
        adapter = data / "adapters" / "sage" / "sage-v1"
        server.adapters["sage-v1"] = str(adapter)
        async with open_db(data / "personabot.db") as db:
            v = await registry.create_version(db, persona="sage", backend="vllm", base_model=BASE_MODEL,
                                              dataset_version="d1", adapter_path=str(adapter))
            await registry.update_version(db, v.name, status="active")
        code, rows, output = await _doctor(tmp_path, {
            "PERSONABOT_DATA_DIR": str(data), "PERSONABOT_PERSONAS_DIR": str(personas),
            "DISCORD_TOKEN": GOOD_TOKEN, "VLLM_BASE_URL": server.base_url})
    checks = _by_check(rows)
    assert code == 0, output
    assert not [r for r in rows if r["status"] == "FAIL"]
    assert checks["settings"]["status"] == "ok"
    assert checks["secret DISCORD_TOKEN"] == {"check": "secret DISCORD_TOKEN", "status": "ok", "ok": True, "detail": "set"}
    assert checks["Discord token format"]["status"] == "ok"
    assert checks["persona sage"]["status"] == "ok"
    assert checks["database migrations"]["status"] == "ok"
    assert checks["data dir writable"]["status"] == "ok"
    assert "GiB free" in checks["data dir free space"]["detail"]
    assert checks["backend sage"]["status"] == "ok" and BASE_MODEL in checks["backend sage"]["detail"]
    assert checks["adapter sage-v1"]["status"] == "ok" and str(adapter) in checks["adapter sage-v1"]["detail"]
    assert "GPU for training" in checks
    assert GOOD_TOKEN not in output, "secrets are never printed"
    assert any(r.path == "/v1/models" for r in server.requests)


async def test_doctor_on_a_broken_configuration(tmp_path):
    personas = tmp_path / "personas"
    _persona(personas, "sage", f'display_name = "Sage"\nsystem_prompt = "You are Sage."\n'
                               f'[model]\nbackend = "vllm"\nmodel = "not-served"\n')
    _persona(personas, "oracle", 'display_name = "Oracle"\nsystem_prompt = "You foresee."\n[model]\nbackend = "openai"\nmodel = "gpt-x"\n')
    _persona(personas, "typo", 'display_name = "Typo"\nsystem_prompt = "x"\ntemprature = 0.5\n')
    not_a_dir = tmp_path / "data-is-a-file"
    not_a_dir.write_text("oops")
    async with FakeOpenAIServer() as server:
        code, rows, output = await _doctor(tmp_path, {
            "PERSONABOT_DATA_DIR": str(not_a_dir), "PERSONABOT_PERSONAS_DIR": str(personas),
            "DISCORD_TOKEN": "Bot " + GOOD_TOKEN, "VLLM_BASE_URL": server.base_url, "OPENAI_BASE_URL": server.base_url})
    checks = _by_check(rows)
    assert code == 1, output
    assert checks["Discord token format"]["status"] == "FAIL" and "starts with 'Bot '" in checks["Discord token format"]["detail"]
    assert checks["secret for oracle"]["status"] == "FAIL" and "OPENAI_API_KEY missing" in checks["secret for oracle"]["detail"]
    assert checks["persona typo"]["status"] == "FAIL" and "temprature" in checks["persona typo"]["detail"]
    assert checks["backend sage"]["status"] == "FAIL" and "not-served" in checks["backend sage"]["detail"]
    assert checks["data dir writable"]["status"] == "FAIL"
    assert checks["database migrations"]["status"] == "FAIL"
    assert GOOD_TOKEN not in output


async def test_doctor_reports_an_invalid_setting_instead_of_crashing(tmp_path):
    code, rows, output = await _doctor(tmp_path, {"PERSONABOT_METRICS_PORT": "nine-thousand",
                                                  "PERSONABOT_DATA_DIR": str(tmp_path / "data")})
    assert code == 1
    assert rows == [{"check": "settings", "status": "FAIL", "ok": False, "detail": rows[0]["detail"]}]
    assert "PERSONABOT_METRICS_PORT" in rows[0]["detail"] and "nine-thousand" in rows[0]["detail"]
