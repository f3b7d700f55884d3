"""Role confusion on a labelled set, with the embedded SmolLM2-135M-Instruct (slow).

The set comes from the TutorChatbot transcripts (`../shared/data/tutorchatbot/tim.jsonl`): in a
conversation cut after a student's line, TIM's real reply is a persona line, and the student's
*next* line, presented as TIM's reply to the same context, is a member line: exactly the failure of a
fine-tune that continues the student's side. The goals are ≥ 90% of the students' lines flagged and
≤ 10% of TIM's; the test prints both rates. The threshold was calibrated on 50 other exchanges
(`trainer.evaluate.roles.DEFAULT_THRESHOLD`); these exchanges (another seed) are held out from that.
"""
from __future__ import annotations

import asyncio
import json
import random
import re

import pytest

from bot.persona.loader import load_persona
from tests.conftest import REPO
from trainer.evaluate.roles import DEFAULT_THRESHOLD, RoleChecker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

EXCHANGES = 30


def transcript(prompt: str) -> list[dict]:
    """'User: …\\nTIM: …' → chat messages, consecutive lines of one speaker joined."""
    out: list[dict] = []
    for line in prompt.splitlines():
        match = re.match(r"^(User|TIM):\s?(.*)$", line)
        if match:
            role = "assistant" if match[1] == "TIM" else "user"
            if out and out[-1]["role"] == role:
                out[-1]["content"] += " " + match[2].strip()
            else:
                out.append({"role": role, "content": match[2].strip()})
        elif out:
            out[-1]["content"] += " " + line.strip()
    return [m for m in out if m["content"]]


def labelled_set(shared_dir, n: int, seed: int = 7) -> list[tuple[list[dict], str, str]]:
    """(context ending with a student's line, TIM's real reply, the student's next line)."""
    rows = [json.loads(line) for line in (shared_dir / "data" / "tutorchatbot" / "tim.jsonl").read_text().splitlines()]
    rng = random.Random(seed)
    rng.shuffle(rows)
    found = []
    for row in rows:
        turns = transcript(row["prompt"] + row["completion"])
        cuts = [k for k in range(1, len(turns) - 1) if turns[k]["role"] == "assistant"
                and turns[k - 1]["role"] == "user" and turns[k + 1]["role"] == "user"]
        if cuts:
            k = rng.choice(cuts)
            found.append((turns[:k], turns[k]["content"], turns[k + 1]["content"]))
        if len(found) == n:
            break
    return found


def test_role_confusion_on_the_labelled_tutorchatbot_set(shared_dir, real_models_dir, capsys):
    from bot.backends.local import LocalBackend
    from bot.backends.local_models import resolve_model

    tim = load_persona(REPO / "personas" / "tim")
    exchanges = labelled_set(shared_dir, EXCHANGES)
    assert len(exchanges) == EXCHANGES
    backend = LocalBackend.load(resolve_model("smollm2-135m-instruct", real_models_dir), device="cpu")
    checker = RoleChecker(backend.model, backend.tokenizer)
    tim_lines = [(context, tim_line) for context, tim_line, _ in exchanges]
    student_lines = [(context, student_line) for context, _, student_line in exchanges]
    tim_flags = asyncio.run(checker.flag(tim, tim_lines))
    student_flags = asyncio.run(checker.flag(tim, student_lines))
    asyncio.run(backend.aclose())

    students = sum(student_flags) / len(student_flags)
    tims = sum(tim_flags) / len(tim_flags)
    with capsys.disabled():
        print(f"\nrole confusion, {EXCHANGES} held-out TutorChatbot exchanges, threshold {DEFAULT_THRESHOLD}: "
              f"students' lines flagged {students:.0%} (goal ≥ 90%), TIM's lines flagged {tims:.0%} (goal ≤ 10%)")
        for (context, line), flagged in zip(tim_lines, tim_flags):
            if flagged:
                print(f"  TIM line flagged: {line[:90]!r}")
        for (context, line), flagged in zip(student_lines, student_flags):
            if not flagged:
                print(f"  student line missed: {line[:90]!r}")
    # Regression bounds a little below the goals (30 lines: one line is 3.3 points); the printed
    # numbers are the measurement.
    assert students >= 0.85 and tims <= 0.15, (students, tims)
