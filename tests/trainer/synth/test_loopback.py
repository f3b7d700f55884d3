"""Generation end to end through the real OpenAI-compatible client against the loopback server.

The fake server answers each request by its `seed` (one per plan item) with a scripted transcript
containing one failure mode, and injects HTTP faults; the output must contain none of the failure
modes, and the drop counts must match the script.
"""
from __future__ import annotations

import asyncio
import json
import re

from typer.testing import CliRunner

from bot.backends.openai_compat import OpenAICompatBackend
from tests.conftest import REPO
from tests.support.openai_server import BASE_MODEL, TEST_API_KEY
from trainer.sources import list_sources
from trainer.synth import RunOptions, load_catalog, run_synth
from trainer.synth.store import source_turns

from .scripts import SCRIPT

LABEL_START = re.compile(r"^\W*(user|usr|tim|eve|tutor|assistant)\W*:", re.IGNORECASE)
EXPECTED_DROPS = {reason: 1 for _, _, reason in SCRIPT if reason}


def script_by_seed(plan) -> dict[int, str]:
    return {item.seed: text for item, (_, text, _) in zip(plan, SCRIPT)}


def assert_clean(turns_as_pairs: list[tuple[str, str]]) -> None:
    roles = [r for r, _ in turns_as_pairs]
    assert roles[-1] == "assistant"
    assert all(a != b for a, b in zip(roles, roles[1:]))
    for _, text in turns_as_pairs:
        assert text and not LABEL_START.match(text), text
        for bad in ("EVE", "As an AI", "TIM:", "User:", "Plants use light to make food. Plants use light"):
            assert bad not in text, (bad, text)


async def test_generation_against_the_loopback_server(db, tim, openai_server):
    catalog = load_catalog(tim)
    plan = catalog.plan(len(SCRIPT), seed=11)
    replies = script_by_seed(plan)
    openai_server.responder = lambda req: replies[req.json["seed"]]
    openai_server.fail(500)
    openai_server.fail(429)
    backend = OpenAICompatBackend(openai_server.base_url, TEST_API_KEY, BASE_MODEL, kind="vllm", max_retries=0, timeout_s=10)
    try:
        report = await run_synth(db, backend, tim, catalog,
                                 RunOptions(count=len(SCRIPT), seed=11, backoff_s=0.001, concurrency=2, other_personas=("EVE",)))
    finally:
        await backend.aclose()

    assert dict(report.clean.dropped) == EXPECTED_DROPS
    assert report.clean.kept == 2 and report.retries == 2 and report.failed == 0
    assert report.tokens_estimated and report.completion_tokens > 0
    requests = openai_server.chat_requests
    assert len(requests) == len(SCRIPT) + 2
    sent = requests[-1].json
    assert sent["model"] == BASE_MODEL and sent["temperature"] == tim.synthetic.temperature and sent["stream"] is True
    assert sent["messages"][0]["content"] == tim.synthetic.writer_system
    assert "{" not in sent["messages"][1]["content"], "every template slot was filled"

    for source in [s for s in await list_sources(db, "tim") if s["kind"] == "synthetic"]:
        assert source["provenance"]["model"] == BASE_MODEL and source["provenance"]["backend"] == "vllm"
        assert_clean([(t.role, t.text) for t in await source_turns(db, source["id"])])


async def test_cli_generates_exports_and_resumes(openai_server, settings, tmp_path, monkeypatch):
    from bot.cli.main import app
    from bot.persona import load_persona

    tim = load_persona(REPO / "personas" / "tim")
    plan = load_catalog(tim).plan(len(SCRIPT), seed=11)
    replies = script_by_seed(plan)
    openai_server.responder = lambda req: replies[req.json["seed"]]
    monkeypatch.setenv("VLLM_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("PERSONABOT_PERSONAS_DIR", str(REPO / "personas"))
    out = tmp_path / "tim.jsonl"
    args = ["--data-dir", str(settings.core.data_dir), "synth", "--persona", "tim", "--count", str(len(SCRIPT)),
            "--backend", "vllm", "--model", BASE_MODEL, "--base-url", openai_server.base_url, "--seed", "11",
            "--export", str(out), "--json"]
    runner = CliRunner()
    # The command runs its own event loop; the server keeps serving on this one.
    result = await asyncio.to_thread(runner.invoke, app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 2 and report["dropped"] == EXPECTED_DROPS and report["exported"] == 2

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    for example in lines:
        assert example["messages"][0] == {"role": "system", "content": tim.system_prompt}
        assert_clean([(m["role"], m["content"]) for m in example["messages"][1:]])

    # A rerun finds everything done: no request reaches the server, and the export is the same.
    before = len(openai_server.chat_requests)
    again = await asyncio.to_thread(runner.invoke, app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["already_done"] == len(SCRIPT)
    assert len(openai_server.chat_requests) == before
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == lines


async def test_cli_explains_a_rejected_key(openai_server, settings, monkeypatch):
    from bot.cli.main import app

    monkeypatch.setenv("VLLM_API_KEY", "sk-wrong")
    monkeypatch.setenv("PERSONABOT_PERSONAS_DIR", str(REPO / "personas"))
    args = ["--data-dir", str(settings.core.data_dir), "synth", "-p", "tim", "-n", "3", "-b", "vllm", "-m", BASE_MODEL,
            "--base-url", openai_server.base_url]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 1
    assert "refused the API key" in result.output and "run the same command again to continue" in result.output
    assert "Traceback" not in result.output


async def test_scheduler_entry_point_adds_new_conversations_each_time(openai_server, db, tmp_path, monkeypatch):
    from bot.persona import load_persona
    from bot.settings import load_settings
    from trainer.synth import add_conversations

    from .conftest import persona_copy
    from .scripts import varied

    folder = persona_copy(tmp_path, "tim")
    toml = (folder / "persona.toml").read_text(encoding="utf-8")
    toml = toml.replace('backend = "local"\nmodel = "smollm2-135m-instruct"',
                        f'backend = "vllm"\nmodel = "{BASE_MODEL}"\nbase_url = "{openai_server.base_url}"')
    (folder / "persona.toml").write_text(toml, encoding="utf-8")
    tim = load_persona(folder)
    monkeypatch.setenv("VLLM_API_KEY", TEST_API_KEY)
    settings = load_settings(data_dir=tmp_path / "data", personas_dir=folder.parent)
    seeds: list[int] = []

    def reply(req):
        seeds.append(req.json["seed"])
        return varied(len(seeds))

    openai_server.responder = reply
    assert await add_conversations(db, settings, tim, 3) == 3
    assert await add_conversations(db, settings, tim, 2) == 2
    assert len(seeds) == len(set(seeds)) == 5, "each scheduled run continues the plan instead of repeating it"
    async with db.execute("SELECT item_index FROM synth_items ORDER BY item_index") as cur:
        assert [r[0] for r in await cur.fetchall()] == [0, 1, 2, 3, 4]
