"""Helpers for dataset tests: the twin persona and a generator of small WhatsApp exports."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
OWNER, FRIEND, OTHER = "Olivia Owner", "Marek Lindqvist", "Sunita Rao"
PLANTED = {
    "email": "marek.lindqvist@example.org",
    "phone": "+44 7700 900123",
    "card": "4539 1488 0343 6467",
    "iban": "DE89 3704 0044 0532 0130 00",
}


@pytest.fixture
def persona():
    from bot.persona import load_persona

    return load_persona(REPO / "personas" / "twin")


def write_chat(path: Path, n_sessions: int = 12, *, group: bool = True, duplicate_last_early: bool = False) -> Path:
    """Sessions a day apart; session k's lines all carry the marker word 'topic{k:02d}'."""
    t = datetime(2023, 3, 1, 10, 0)
    lines = []
    order = list(range(n_sessions))
    if duplicate_last_early:
        order.insert(1, n_sessions - 1)       # the newest conversation also happened (verbatim) early on
    for k in order:
        m = f"topic{k:02d}"
        turns = [(FRIEND, f"so what about {m} then, are you coming along or not"),
                 (OWNER, f"yes {m} sounds great, I will be there at eight with snacks"),
                 (FRIEND, f"ok {m} it is, bring the blue blanket please"),
                 (OWNER, f"sure thing, {m} blanket packed already 😄")]
        if group:
            turns.insert(1, (OTHER, f"me too for {m}, if Olivia drives"))
        if k == 2:
            turns += [(FRIEND, f"mail me at {PLANTED['email']} or call {PLANTED['phone']} {m}"),
                      (OWNER, f"my card {PLANTED['card']} and iban {PLANTED['iban']} for {m}, thanks Marek and Sunita Rao")]
        for speaker, text in turns:
            t += timedelta(minutes=3)
            lines.append(f"{t:%d/%m/%Y, %H:%M} - {speaker}: {text}")
        t += timedelta(days=1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
