"""Fixtures for synthetic-generation tests: a scripted writer backend at the Backend seam.

`ScriptedBackend(replies)` answers by the request's sampling seed (each plan item has its own), so
the reply an item gets does not depend on which concurrent request runs first. A reply may be an
exception instance (raised instead of streaming) or a list of them followed by the text (one
per attempt). It counts calls, can fail permanently after `fail_after` calls, and can delay a
reply (`delays`, by seed) to order concurrent requests.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.backends.base import Backend, BackendAuthError, GenerationParams
from bot.persona import load_persona
from tests.conftest import REPO


class ScriptedBackend(Backend):
    kind = "scripted"

    def __init__(self, replies: dict[int, object] | None = None, default: str = "", *, fail_after: int | None = None,
                 delays: dict[int, float] | None = None):
        self.replies = dict(replies or {})
        self.delays = dict(delays or {})
        self.default = default
        self.fail_after = fail_after
        self.calls: list[int] = []
        self.attempts: dict[int, int] = {}

    @property
    def model_name(self) -> str:
        return "scripted-writer"

    async def stream(self, messages: list[dict], params: GenerationParams):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise BackendAuthError("scripted: key revoked")
        self.calls.append(params.seed)
        n = self.attempts[params.seed] = self.attempts.get(params.seed, 0) + 1
        reply = self.replies.get(params.seed, self.default)
        if isinstance(reply, list):
            reply = reply[min(n, len(reply)) - 1]
        await asyncio.sleep(self.delays.get(params.seed, 0))
        if isinstance(reply, BaseException):
            raise reply
        # Stream in small pieces, as a real backend does.
        for i in range(0, len(reply), 17):
            yield reply[i : i + 17]


@pytest.fixture
def tim():
    return load_persona(REPO / "personas" / "tim")


@pytest.fixture
def twin():
    return load_persona(REPO / "personas" / "twin")


def persona_copy(tmp_path: Path, name: str, extra_toml: str = "") -> Path:
    """A writable copy of a shipped persona folder (to change its data files in a test)."""
    import shutil

    dest = tmp_path / "personas" / name
    shutil.copytree(REPO / "personas" / name, dest)
    if extra_toml:
        with (dest / "persona.toml").open("a", encoding="utf-8") as fh:
            fh.write("\n" + extra_toml)
    return dest


from tests.support.openai_server import openai_server  # noqa: E402,F401  (the loopback OpenAI/vLLM server fixture)
