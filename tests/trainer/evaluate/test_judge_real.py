"""The offline judge (`judge = "local"`) with the embedded SmolLM2-135M-Instruct (slow).

A candidate that speaks as the student (the failure that reached members: TIM answering a bored
student with "Awesome! So I just want to know if you have any cool ideas for my blog post"), against
TIM's real replies from the TutorChatbot transcripts: the judge must rank it below, and its clearest
losses must hold those replies. Prints the win rate and the clearest losses with their reasons.

Measured: 9 of 10 such replies lose, but the issue's own blog-post reply *wins* against a good reply
(a 135M model finds "Awesome! ..." likely as a cheerful tutor's turn): the offline judge is weak,
which is why role confusion is a separate check (it flags that reply, and not the good one) and
`review` leaves the decision to a human.
"""
from __future__ import annotations

import asyncio

import pytest

from bot.persona.loader import load_persona
from tests.conftest import REPO
from tests.trainer.evaluate.test_roles_real import labelled_set
from trainer.evaluate.judge import Case, LikelihoodJudge, judge_pairs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

BLOG = "Awesome! So I just want to know if you have any cool ideas for my blog post"
BORED = [{"role": "user", "content": "i dont care about school its boring"}]
GOOD = "I hear you, school can feel boring sometimes. What do you like doing when you're not in class?"


def test_local_judge_puts_replies_written_as_the_student_in_its_clearest_losses(shared_dir, real_models_dir, capsys):
    from bot.backends.local import LocalBackend
    from bot.backends.local_models import resolve_model

    tim = load_persona(REPO / "personas" / "tim")
    rubric = (REPO / "personas" / "tim" / "rubric.md").read_text(encoding="utf-8")
    cases = [Case("bored", BORED, BLOG, GOOD)]
    cases += [Case(f"tutorchatbot-{i}", context, student, tim_line)
              for i, (context, tim_line, student) in enumerate(labelled_set(shared_dir, 9, seed=11))]
    backend = LocalBackend.load(resolve_model("smollm2-135m-instruct", real_models_dir), device="cpu")
    judge = LikelihoodJudge(backend.model, backend.tokenizer, name="local")
    result = asyncio.run(judge_pairs(judge, tim, rubric, cases, baseline="TIM's real replies"))
    from trainer.evaluate.roles import RoleChecker

    blog_flagged = asyncio.run(RoleChecker(backend.model, backend.tokenizer).flag(tim, [(BORED, BLOG), (BORED, GOOD)]))
    asyncio.run(backend.aclose())

    with capsys.disabled():
        print(f"\nlocal judge, a candidate speaking as the student vs TIM's real replies: win rate {result.win_rate:.2f} "
              f"({result.wins} wins, {result.losses} losses, {result.ties} ties)")
        bored = next(p for p in result.pairs if p.case.name == "bored")
        print(f"  the issue's blog-post reply: judge says {bored.outcome} ({bored.candidate_first.reason}); "
              f"role confusion flags it: {blog_flagged[0]}, flags the good reply: {blog_flagged[1]}")
        for pair in result.clearest("loss"):
            print(f"  clearest loss: {pair.case.candidate[:70]!r} vs {pair.case.baseline[:50]!r}: {pair.candidate_first.reason}")
    assert result.unparsed == 0 and len(result.pairs) == 10
    assert result.win_rate <= 0.3, result.to_dict()
    assert blog_flagged == [True, False]      # the role-confusion check catches what this judge misses
    assert all(p.outcome == "loss" for p in result.clearest("loss")) and len(result.clearest("loss")) == 3
