"""Human promotion review: starting a review from a gated candidate, promoting only after K/2 votes,
and the terminal's `personabot model review` with keys; `model list` shows the numbers."""
import asyncio
import json

import pytest
from typer.testing import CliRunner

from bot.persona import load_personas
from bot.store import open_db, registry, reviews
from tests.bot.serving.fakes import make_adapter
from trainer.review import ReviewError, finish_review, review_pairs, start_review

SAMPLES = [{"context": f"val-{i}", "messages": [{"role": "user", "content": f"question {i}"}],
            "candidate": f"new answer {i}", "baseline": f"old answer {i}"} for i in range(8)]
SAMPLES.append({"context": "same", "messages": [{"role": "user", "content": "hi"}], "candidate": "Hello!", "baseline": "Hello!"})


async def gated(db, settings, *, samples=SAMPLES, passed=True):
    v = await registry.create_version(db, persona="tim", backend="local", base_model="smollm2-135m-instruct",
                                      dataset_version="d1")
    adapter = make_adapter(settings.core.data_dir / "adapters" / "tim" / v.name)
    metrics = {"eval": {"passed": passed, "samples": samples, "baseline": "tim-v1", "probes": [{}, {}], "probes_passed": 2,
                        "losses": {"candidate": 1.2, "active": 1.3},
                        "judge": {"judge": "local", "win_rate": 0.75, "pairs": 8, "wins": 4, "losses": 0, "ties": 4,
                                  "unparsed": 0, "examples": {"wins": [{"context": "val-7"}], "losses": []}}}}
    await registry.update_version(db, v.name, status="candidate", adapter_path=str(adapter), metrics=metrics)
    return await registry.get_version(db, v.name)


@pytest.fixture
def personas(settings):
    return load_personas(settings.core.resolved_personas_dir())


def test_review_pairs_prefer_differing_and_judged_replies():
    class V:
        metrics = {"eval": {"samples": SAMPLES, "judge": {"examples": {"wins": [{"context": "val-7"}], "losses": []}}}}

    chosen = review_pairs(V, 3)
    assert [p["context"] for p in chosen] == ["val-7", "val-0", "val-1"]
    assert review_pairs(V, 20)[-1]["context"] == "same"     # identical replies last


async def test_promote_only_after_half_the_pairs_are_voted(db, settings, personas):
    tim = personas["tim"]
    old = await gated(db, settings)
    await registry.set_active(db, old.name)
    new = await gated(db, settings)
    review = await start_review(db, tim, requested_by="99")
    assert review.candidate == new.name and len(review.pairs) == tim.gate.review_pairs == 6
    assert "judge local: win rate 0.75" in review.gate and "probes passed: 2/2" in review.gate
    assert (await start_review(db, tim)).id == review.id          # the open review is reused

    await reviews.vote(db, review.id, 0, "99", "1")
    await reviews.vote(db, review.id, 1, "98", "1")
    with pytest.raises(ReviewError, match="vote on at least 3 of the 6 pairs before promoting \\(2 voted so far\\)"):
        await finish_review(db, settings, tim, review.id, "promote", "99")
    assert (await registry.active_version(db, "tim")).name == old.name
    await reviews.vote(db, review.id, 2, "99", "same")
    line = await finish_review(db, settings, tim, review.id, "promote", "99")
    assert f"promoted to {new.name}" in line and "human win rate" in line
    assert (await registry.active_version(db, "tim")).name == new.name
    assert (await registry.promoted_by(db, "tim"))[new.name] == "99"
    assert (await reviews.get_review(db, review.id)).status == "promoted"
    with pytest.raises(ReviewError, match="already closed"):
        await finish_review(db, settings, tim, review.id, "keep", "99")


async def test_keep_current_and_refusals(db, settings, personas):
    tim = personas["tim"]
    with pytest.raises(ReviewError, match="no candidate that passed the gate"):
        await start_review(db, tim)
    bare = await gated(db, settings, samples=[])
    with pytest.raises(ReviewError, match="kept no reply pairs"):
        await start_review(db, tim, bare.name)
    v = await gated(db, settings)
    review = await start_review(db, tim, v.name)
    assert "Kept the current version" in await finish_review(db, settings, tim, review.id, "keep", "77")
    assert await registry.active_version(db, "tim") is None
    assert (await registry.get_version(db, v.name)).status == "candidate"
    assert (await registry.events(db, "tim"))[-1]["event"] == "review_kept"


def test_terminal_review_with_keys_then_model_list(settings):
    async def setup():
        async with open_db(settings.core.db_path) as db:
            old = await gated(db, settings)
            await registry.set_active(db, old.name, detail="by cli:zed")
            return (await gated(db, settings)).name

    new = asyncio.run(setup())
    from bot.cli.main import app

    runner = CliRunner()
    # Three votes (1, 2, same), a typo that is asked again, then quit early: promote is offered (3 of 6).
    r = runner.invoke(app, ["model", "review", "--persona", "tim", "--as", "ana", "--no-wait"], input="1\n2\nx\ns\nq\np\n")
    assert r.exit_code == 0, r.output
    assert "Reply 1:" in r.stdout and "Reply 2:" in r.stdout and "question 0" in r.stdout
    assert new not in r.stdout.split("Votes:")[0]                # blind: the version is not named before the end
    assert "Votes: 3 on 3 of 6 pairs" in r.stdout and f"promoted to {new}" in r.stdout
    assert "Type one of" in r.stderr

    r = runner.invoke(app, ["model", "list", "--persona", "tim", "--json"])
    rows = {row["name"]: row for row in json.loads(r.stdout)["versions"]}
    assert rows[new]["promoted_by"] == "cli:ana" and rows[new]["judge_win_rate"] == 0.75
    assert rows[new]["human_win_rate"] is not None and rows[new]["probes"] == "2/2"
    assert rows["tim-v1"]["promoted_by"] == "cli:zed"
    assert runner.invoke(app, ["model", "list", "--persona", "tim"]).exit_code == 0   # the table (80 columns here) renders


def test_terminal_review_refuses_promote_before_enough_votes(settings):
    async def setup():
        async with open_db(settings.core.db_path) as db:
            return (await gated(db, settings)).name

    asyncio.run(setup())
    from bot.cli.main import app

    r = CliRunner().invoke(app, ["model", "review", "--persona", "tim", "--as", "ana"], input="1\nq\np\nl\n")
    assert r.exit_code == 0, r.output
    assert "promote needs votes on 3 pairs" in r.stdout and "The review stays open" in r.stdout
