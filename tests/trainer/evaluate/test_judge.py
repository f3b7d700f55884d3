"""The pairwise judge, through a scripted OpenAI-compatible judge server on loopback (the real openai SDK)."""
import json
import re

from bot.persona.gate import GateSpec
from bot.store import registry
from tests.support.openai_server import BASE_MODEL, TEST_API_KEY
from tests.trainer.evaluate.stand_ins import Backends, Losses, good_tim
from trainer.evaluate import evaluate_version
from trainer.evaluate.judge import judge_pairs, parse_verdict
from trainer.evaluate.runtime import judge_factory

STUDENT = "Awesome! So I just want to know if you have any cool ideas for my blog post"
SPEC = f"openai:{BASE_MODEL}"


def student_tim(messages):
    # The failure of the issue: the promoted TIM speaks as the student.
    return [STUDENT]


def replies_in(request) -> tuple[str, str, str]:
    """(reply A, reply B, the member's last line) as the judge prompt shows them."""
    text = request.json["messages"][-1]["content"]
    a = re.search(r"Reply A \(TIM\): (.*?)\n\nReply B", text, re.S).group(1)
    b = re.search(r"Reply B \(TIM\): (.*?)\n\nWhich reply", text, re.S).group(1)
    last = re.search(r"Conversation:\n(.*?)\n\nReply A", text, re.S).group(1).splitlines()[-1]
    return a, b, last


def verdict(winner, reason="because"):
    return json.dumps({"winner": winner, "reason": reason})


def prefers_tutor(request):
    a, b, _ = replies_in(request)
    if (STUDENT in a) == (STUDENT in b):
        return verdict("tie", "the same reply")
    return verdict("B" if STUDENT in a else "A", "the other reply speaks as the student, not as the tutor")


def prefers_student(request):
    a, _, _ = replies_in(request)
    return verdict("A" if STUDENT in a else "B", "more enthusiastic")


async def setup(db, settings, make_version, candidate, active):
    old = await make_version(dataset="ds-1")
    await registry.set_active(db, old.name)
    new = await make_version(dataset="ds-2")
    backends = Backends({new.name: candidate, old.name: active, "base": good_tim})
    losses = Losses({old.name: 1.3, new.name: 1.2, "base": 2.0})
    settings.openai = settings.openai.model_copy(update={"base_url": None, "api_key": TEST_API_KEY})
    return old, new, backends, losses


async def gate(db, settings, persona, version, backends, losses, server, **kw):
    settings.openai = settings.openai.model_copy(update={"base_url": server.base_url, "api_key": TEST_API_KEY,
                                                         "max_retries": 0})
    return await evaluate_version(db, persona, version, data_dir=settings.core.data_dir, loss_fn=losses,
                                  backend_factory=backends, judge_factory=judge_factory(settings), **kw)


async def test_both_orders_are_sent_with_a_json_schema(db, settings, personas, make_version, openai_server):
    tim = personas["tim"]
    old, new, backends, losses = await setup(db, settings, make_version, good_tim, student_tim)
    openai_server.responder = prefers_tutor
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=4)
    requests = openai_server.chat_requests
    assert len(requests) == 8     # 4 contexts, each judged twice
    for first, second in zip(requests[::2], requests[1::2]):
        a1, b1, last1 = replies_in(first)
        a2, b2, last2 = replies_in(second)
        assert last1 == last2 and (a1, b1) == (b2, a2) and a1 != b1   # the same pair, the other way round
        assert first.json["response_format"]["type"] == "json_schema"
        assert first.json["response_format"]["json_schema"]["schema"]["properties"]["winner"]["enum"] == ["A", "B", "tie"]
    # The rubric from personas/tim/rubric.md reaches the judge.
    assert "compassion" in requests[0].json["messages"][0]["content"].lower()
    assert report.passed, report.summary()
    assert report.judge["win_rate"] == 1.0 and report.judge["pairs"] == 4 and report.judge["unparsed"] == 0
    losses_shown = report.judge["examples"]["losses"]
    wins = report.judge["examples"]["wins"]
    assert not losses_shown and len(wins) == 3
    assert wins[0]["baseline"] == STUDENT and "speaks as the student" in wins[0]["reasons"][0]
    assert "win rate 1.00 over 4 pairs" in report.summary()


async def test_always_a_judge_gives_one_half(db, settings, personas, make_version, openai_server):
    tim = personas["tim"]
    old, new, backends, losses = await setup(db, settings, make_version, good_tim, student_tim)
    openai_server.responder = lambda request: verdict("A", "the first one")
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=5)
    assert report.judge["win_rate"] == 0.5, report.judge
    assert report.judge["ties"] == 5 and report.judge["wins"] == 0 and report.judge["losses"] == 0


async def test_candidate_preferred_passes_and_active_preferred_is_refused(db, settings, personas, make_version, openai_server):
    tim = personas["tim"]
    # A candidate that speaks as the student, against a good active version.
    old, new, backends, losses = await setup(db, settings, make_version, student_tim, good_tim)
    openai_server.responder = prefers_tutor
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=4)
    assert not report.passed
    assert report.judge["win_rate"] == 0.0 and report.judge["losses"] == 4
    assert any(r.startswith(f"judge win rate 0.00 against {old.name} is below 0.50") for r in report.reasons), report.reasons
    clearest = report.judge["examples"]["losses"]
    assert len(clearest) == 3 and all(e["candidate"] == STUDENT for e in clearest)
    stored = await registry.get_version(db, new.name)
    assert stored.status == "failed" and stored.metrics["eval"]["judge"]["win_rate"] == 0.0

    # A good candidate against an active version that speaks as the student: a judge that prefers the
    # active version refuses it, one that prefers the candidate passes it.
    backends.responders.update({new.name: good_tim, old.name: student_tim})
    openai_server.responder = prefers_student
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=4)
    assert not report.passed and report.judge["win_rate"] == 0.0
    openai_server.responder = prefers_tutor
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=4)
    assert report.passed, report.summary()
    assert report.judge["win_rate"] == 1.0
    assert (await registry.get_version(db, new.name)).status == "candidate"


async def test_unreadable_answers_are_counted_and_structured_output_falls_back(db, settings, personas, make_version, openai_server):
    tim = personas["tim"]
    old, new, backends, losses = await setup(db, settings, make_version, good_tim, student_tim)
    answers = iter([
        "I would go with A, it is kinder.",                       # no verdict in it
        'Sure! ```json\n{"winner": "B", "reason": "kind"}\n```',  # JSON inside prose: read
        "winner: A",                                              # a plain line: read
        "hmm",                                                    # unreadable
    ])
    openai_server.responder = lambda request: next(answers, verdict("tie"))
    openai_server.fail(400)   # the server refuses response_format once: the judge asks plainly from then on
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=3)
    assert report.judge["unparsed"] == 2 and report.judge["pairs"] == 3
    requests = openai_server.chat_requests
    assert "response_format" in requests[0].json and all("response_format" not in r.json for r in requests[1:])
    assert any("2 of the judge's 6 answers could not be read" in n for n in report.notes)
    # Pair 1: unreadable / B (candidate as B wins) → tie; pair 2: A (candidate wins) / unreadable → tie.
    assert report.judge["ties"] == 3

    openai_server.responder = lambda request: "no idea"
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge=SPEC, samples=2)
    assert not report.passed and "none of the judge's 4 answers could be read" in report.reasons


async def test_judge_and_samples_come_from_the_spec(db, settings, personas, make_version, openai_server):
    tim = personas["tim"].model_copy(update={"gate": GateSpec(judge=SPEC, samples=2, min_win_rate=0.75)})
    old, new, backends, losses = await setup(db, settings, make_version, good_tim, good_tim)
    openai_server.responder = lambda request: verdict("tie", "equal")
    report = await gate(db, settings, tim, new, backends, losses, openai_server)
    assert report.judge["pairs"] == 2 and report.judge["judge"] == SPEC
    assert not report.passed and "below 0.75" in report.reasons[0]
    # "none" switches the judge off.
    report = await gate(db, settings, tim, new, backends, losses, openai_server, judge="none")
    assert report.judge is None and report.passed


async def test_without_an_active_version_the_base_model_is_the_baseline(db, settings, personas, make_version, openai_server):
    tim = personas["tim"]
    new = await make_version(dataset="ds-2")
    backends = Backends({new.name: good_tim, "base": student_tim})
    openai_server.responder = prefers_tutor
    report = await gate(db, settings, tim, new, backends, Losses({new.name: 1.0, "base": 2.0}), openai_server,
                        judge=SPEC, samples=3)
    assert backends.opened == [new.name, "base"]
    assert report.judge["baseline"] == "the base model smollm2-135m-instruct" and report.judge["win_rate"] == 1.0


async def test_role_confusion_fails_a_candidate_that_speaks_as_the_member(db, settings, personas, make_version):
    tim = personas["tim"]
    old, new, backends, losses = await setup(db, settings, make_version, student_tim, good_tim)
    seen = []

    async def role_check(persona, cases):
        seen.extend(cases)
        return [reply == STUDENT for _, reply in cases]

    report = await evaluate_version(db, tim, new, data_dir=settings.core.data_dir, loss_fn=losses,
                                    backend_factory=backends, role_check=role_check, samples=4)
    assert len(seen) == 8 and seen[0][0][-1]["role"] == "user"
    assert report.role_confusion["candidate"] == 1.0 and report.role_confusion["baseline"] == 0.0
    assert not report.passed and any(r.startswith("role confusion 100% of replies written as the member") for r in report.reasons)
    assert "role confusion: candidate 100%" in report.summary()


def test_parse_verdict_forms():
    assert parse_verdict('{"winner": "B", "reason": "kinder"}').winner == "B"
    assert parse_verdict('{"winner": "Tie", "reason": ""}').winner == "tie"
    assert parse_verdict("The answer: {\"winner\": \"A\", \"reason\": \"x\"} done").reason == "x"
    assert parse_verdict('"winner": "b"').winner == "B"
    assert not parse_verdict("A is better").parsed and not parse_verdict("").parsed


async def test_local_judge_scores_replies_with_a_real_model(tiny_llama_dir, personas, settings):
    from bot.persona.gate import check_judge_spec
    from trainer.evaluate.judge import Case

    tim = personas["tim"]
    spec = check_judge_spec(f"local:{tiny_llama_dir}")
    cases = [Case("c1", [{"role": "user", "content": "what is a fraction"}], "A part of a whole.", "hmm hmm hmm hmm"),
             Case("c2", [{"role": "user", "content": "hi"}], "Hello!", "Hello!")]
    async with judge_factory(settings)(tim, spec) as judge:
        result = await judge_pairs(judge, tim, "Be kind.", cases, baseline="base")
    assert result.unparsed == 0 and len(result.pairs) == 2
    first = result.pairs[0]
    # Scores do not depend on the order, so the pair is decided the same way both times.
    assert first.candidate_first.margin == -first.candidate_second.margin != 0
    margin = first.candidate_first.margin
    assert first.outcome == ("tie" if abs(margin) < judge.tie_margin else "win" if margin > 0 else "loss")
    assert "mean log-likelihood per token" in first.candidate_first.reason
    assert result.pairs[1].outcome == "tie"     # identical replies
