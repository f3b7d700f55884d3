"""Fixtures shared by the whole suite.

- `settings`: Settings whose data directory is a fresh temporary folder.
- `db`: an aiosqlite connection to a real, migrated SQLite file in that folder.
- `shared_dir`: `../shared` (design data and real export samples); tests using it skip when absent
  (outside CI: with `CI` set every skip must be listed in `tests/allowed_skips.txt`).
- from `tests/support/fixtures.py`: `tiny_llama_dir` (tiny random Llama + ChatML tokenizer, built
  once per session) and `real_models_dir` (`data/models`, the per-machine cache of real weights).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixtures every test folder may use (tiny model, real-model cache); see tests/support/fixtures.py.
# skip_guard: with CI set, a skip not named in tests/allowed_skips.txt fails the run.
pytest_plugins = ["tests.support.fixtures", "tests.support.skip_guard"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Keep torch from oversubscribing the small CI machine when several tests run model code.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from bot.settings import load_settings

    for var in ("DISCORD_TOKEN", "OPENAI_API_KEY", "PERSONABOT_PERSONAS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PERSONABOT_DATA_DIR", str(tmp_path / "data"))
    return load_settings(data_dir=tmp_path / "data", personas_dir=REPO / "personas")


@pytest.fixture
async def db(settings):
    from bot.store import open_db

    async with open_db(settings.core.db_path) as conn:
        yield conn
