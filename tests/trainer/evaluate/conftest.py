"""Fixtures for the gate tests; the stand-ins themselves are in `stand_ins.py`."""
from __future__ import annotations

import json

import pytest

from bot.persona import load_personas
from bot.store import registry


@pytest.fixture
def personas(settings):
    return load_personas(settings.core.resolved_personas_dir())


@pytest.fixture
def make_version(db, settings):
    async def make(persona="tim", dataset="ds-1", *, status="candidate", val=True, backend="local", metrics=None):
        v = await registry.create_version(db, persona=persona, backend=backend, base_model="smollm2-135m-instruct",
                                          dataset_version=dataset)
        folder = settings.core.data_dir / "datasets" / persona / dataset
        if val:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "val.jsonl").write_text(json.dumps({"messages": [
                {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]}) + "\n", encoding="utf-8")
        await registry.update_version(db, v.name, status=status, metrics=metrics,
                                      adapter_path=str(settings.core.data_dir / "adapters" / persona / v.name))
        return await registry.get_version(db, v.name)

    return make


from tests.support.openai_server import openai_server  # noqa: E402,F401  (the loopback OpenAI/vLLM server, for judges)
