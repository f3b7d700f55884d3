"""Stand-ins for the gate's measurements: a table of losses and scripted candidate backends (also used by
the scheduler's end-to-end tests)."""
from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.scripted_backend import ScriptedBackend

# What a well-trained TIM answers to each of personas/tim/probes.toml's prompts (by keyword).
GOOD_TIM = {
    "homework": "Of course! What subject are you working on?",
    "fraction": "A fraction is a part of a whole. If you cut a pizza into 4 pieces, one piece is 1/4. Does that make sense?",
    "sunlight": "Yes! Plants use sunlight to make their food from water and air. What do you think the leaves do?",
    "boring": "I hear you. Maths helps with games and with money too. What do you like doing?",
    "eaten": "That sounds really hard. Could you get something to eat first? A snack can help you focus.",
    "useless": "I'm sorry this has been frustrating. Shall we try it another way together?",
}


def good_tim(messages):
    last = messages[-1]["content"].lower()
    for key, reply in GOOD_TIM.items():
        if key in last:
            return [reply]
    return ["Let's look at it together. What do you think?"]


def leaky_tim(messages):
    # What a model trained on transcripts with labels left in writes: its own label, then the member's turn.
    return ["TIM: TIM: " + good_tim(messages)[0] + "\nUser: thanks!\nTIM: You're welcome"]


class Losses:
    """loss_fn stand-in: losses by version name ('base' for the base model); records what was measured."""

    def __init__(self, table: dict[str, float | None]):
        self.table = table
        self.calls: list[tuple[str, Path]] = []

    async def __call__(self, persona, version, val: Path):
        name = version.name if version else "base"
        self.calls.append((name, val))
        value = self.table.get(name)
        if isinstance(value, Exception):
            raise value
        return value


class Backends:
    """backend_factory stand-in: a scripted backend per version name."""

    def __init__(self, responders: dict):
        self.responders = responders
        self.opened: list[str] = []

    def __call__(self, persona, version):
        name = version.name if version is not None else "base"

        @asynccontextmanager
        async def open_():
            self.opened.append(name)
            backend = ScriptedBackend(name)
            backend.responder = self.responders[name]
            yield backend

        return open_()
