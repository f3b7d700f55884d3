"""`personabot curate ...` in the terminal: the piped review walk, list, export → edit → import, auto, by id."""
import asyncio
import json

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from bot.store import consent, curation, exchanges, feedback, open_db
from tests.conftest import REPO


@pytest.fixture
def env(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("PERSONABOT_DATA_DIR", str(data))
    monkeypatch.setenv("PERSONABOT_PERSONAS_DIR", str(REPO / "personas"))
    monkeypatch.delenv("EDITOR", raising=False)
    return data


def seed(data, replies, *, thumbs=None, opted_out=()):
    """Log (question, reply) exchanges for tim; `thumbs`: {question: +1/-1}. Returns {question: item id}."""
    async def go():
        async with open_db(data / "personabot.db") as db:
            await consent.set_consent(db, "u1", True, "1", display_name="Ana")
            await consent.set_consent(db, "u2", True, "1", display_name="Ben")
            ids = {}
            for q, r in replies:
                logged = await exchanges.log_exchange(db, persona="tim", conversation_key=f"discord:{len(ids)}", user_id="u1",
                                                      user_content=q, reply_content=r, reply_external_id=f"x-{q}", guild_id="g1")
                ids[q] = logged.reply_message_id
            for q, v in (thumbs or {}).items():
                assert await feedback.record_feedback(db, user_id="u2", reply_external_id=f"x-{q}", value=v)
            return ids
    return asyncio.run(go())


def items(data):
    async def go():
        async with open_db(data / "personabot.db") as db:
            return {i.context[-1].text: i for i in await curation.list_items(db, curation.QueueFilter(status=None), limit=100)}
    return asyncio.run(go())


def cli(*args, input=None):
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def test_help_shows_key_letters_literally():
    out = cli("curate", "review", "--help").stdout
    for key in ("[a]pprove", "[r]eject", "[e]dit", "[s]kip", "[q]uit"):
        assert key in out, out


def test_piped_walk_approves_rejects_corrects_skips_and_quits(env):
    seed(env, [("q-old", "old reply"), ("q-liked", "liked reply"), ("q-bad", "bad reply"), ("q-new", "new reply")],
         thumbs={"q-bad": -1, "q-liked": 1})
    # Order: 👎 (q-bad), 👍 (q-liked), newest (q-new), q-old. "x" is not a key and is asked again.
    result = cli("curate", "review", "--persona", "tim", "--as", "sam", input="r\nx\na\ne\nA better reply.\ns\nq\n")
    assert result.exit_code == 0, result.output
    assert "Unknown key 'x'" in result.stdout and "Ana:" in result.stdout
    assert "Done: 1 approved, 1 rejected, 1 corrected, 1 skipped" in result.stdout
    got = items(env)
    assert got["q-bad"].status == "rejected" and got["q-liked"].status == "approved"
    assert (got["q-new"].status, got["q-new"].correction, got["q-new"].reply) == ("corrected", "A better reply.", "new reply")
    assert got["q-old"].status == "pending" and got["q-liked"].curated_by == "cli:sam"


def test_edit_uses_editor_when_set_and_eof_quits(env, monkeypatch):
    seed(env, [("2+2?", "It is five.")])
    monkeypatch.setenv("EDITOR", "sed -i s/five/four/")
    result = cli("curate", "review", "-p", "tim", input="e\n")
    assert result.exit_code == 0, result.output
    got = items(env)["2+2?"]
    assert (got.status, got.correction) == ("corrected", "It is four.")
    result = cli("curate", "review", "-p", "tim", input="")
    assert result.exit_code == 0 and "No more pending replies." in result.stdout


def test_unknown_persona_is_named(env):
    result = cli("curate", "review", "-p", "nobody", input="q\n")
    assert result.exit_code == 1 and "unknown persona 'nobody'" in result.output


def test_list_json_and_status(env):
    ids = seed(env, [("a", "ra"), ("b", "rb")])
    cli("curate", "approve", str(ids["a"]))
    out = json.loads(cli("curate", "list", "--persona", "tim", "--json").stdout)
    assert out["counts"] == {"pending": 1, "approved": 1, "rejected": 0, "corrected": 0}
    assert [i["id"] for i in out["items"]] == [ids["b"]]
    assert out["items"][0]["context"] == [{"role": "member", "speaker": "Ana", "text": "b"}]
    approved = json.loads(cli("curate", "list", "--status", "approved", "--json").stdout)["items"]
    assert [i["id"] for i in approved] == [ids["a"]]
    assert cli("curate", "list", "--status", "maybe").exit_code == 2


def test_decide_by_id_and_missing_id_fails(env):
    ids = seed(env, [("a", "ra"), ("b", "rb")])
    assert cli("curate", "reject", str(ids["a"])).exit_code == 0
    assert cli("curate", "correct", str(ids["b"]), "--text", "fixed").exit_code == 0
    result = cli("curate", "approve", "99999", "--json")
    assert result.exit_code == 1 and json.loads(result.stdout) == [{"id": 99999, "status": "approved", "found": False}]
    got = items(env)
    assert got["a"].status == "rejected" and got["b"].final_reply == "fixed"


def test_export_edit_import_applies_decisions_and_names_the_bad_line(env, tmp_path):
    ids = seed(env, [("a", "ra"), ("b", "rb"), ("c", "rc"), ("d", "rd")])
    file = tmp_path / "review.jsonl"
    result = cli("curate", "export", str(file), "--persona", "tim")
    assert result.exit_code == 0 and "Wrote 4 item(s)" in result.stdout
    records = [json.loads(line) for line in file.read_text().splitlines()]
    assert {r["id"] for r in records} == set(ids.values())
    assert all(r["status"] == "pending" and r["context"][0]["speaker"] == "Ana" for r in records)
    by_q = {r["context"][-1]["text"]: r for r in records}
    by_q["a"]["status"] = "approved"
    by_q["b"].update(status="corrected", correction="rb, but better")
    by_q["c"]["status"] = "corrected"                       # no correction: a bad line
    lines = [json.dumps(by_q[q]) for q in ("a", "b", "c", "d")] + ["{not json", '{"id": 999999, "status": "approved"}']
    file.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")     # with an editor's BOM
    result = cli("curate", "import", str(file), "--as", "offline")
    assert result.exit_code == 1
    assert f"{file}:3: item {ids['c']}: status \"corrected\" needs the corrected reply" in result.output
    assert f"{file}:5: not valid JSON" in result.output
    assert f"{file}:6: item 999999: no such item" in result.output
    assert result.output.index(f"{file}:3:") < result.output.index(f"{file}:5:") < result.output.index(f"{file}:6:")
    assert "2 changed, 1 unchanged, 3 bad line(s)" in result.stdout
    assert f"item {ids['a']}: pending → approved" in result.stdout
    got = items(env)
    assert got["a"].status == "approved" and got["a"].curated_by == "cli:offline"
    assert got["b"].final_reply == "rb, but better" and got["c"].status == "pending" and got["d"].status == "pending"
    # Importing the same file again changes nothing more.
    again = json.loads(cli("curate", "import", str(file), "--json").stdout)
    assert again["changed"] == [] and again["unchanged"] == 3


def test_import_missing_file(env, tmp_path):
    result = cli("curate", "import", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_auto_thumbs_up_dry_run_then_apply(env):
    ids = seed(env, [("liked", "Good answer."), ("mixed", "Hm."), ("plain", "Okay."), ("leaky", "User: what now?")],
               thumbs={"liked": 1, "mixed": -1, "leaky": 1})
    dry = json.loads(cli("curate", "auto", "--persona", "tim", "--rule", "thumbs-up", "--dry-run", "--json").stdout)
    assert dry["approved"] == [ids["liked"]] and dry["held_back"][0]["id"] == ids["leaky"]
    assert items(env)["liked"].status == "pending"
    result = cli("curate", "auto", "--persona", "tim", "--rule", "thumbs-up")
    assert result.exit_code == 0 and f"approved item {ids['liked']}" in result.stdout
    assert "held back item" in result.stdout and "label leak" in result.stdout
    got = items(env)
    assert got["liked"].status == "approved" and got["liked"].curated_by.startswith("cli:")
    assert {got[q].status for q in ("mixed", "plain", "leaky")} == {"pending"}
    rest = json.loads(cli("curate", "auto", "-p", "tim", "--rule", "no-thumbs-down", "--json").stdout)
    assert rest["approved"] == [ids["plain"]]
    assert cli("curate", "auto", "-p", "tim", "--rule", "everything").exit_code == 2
