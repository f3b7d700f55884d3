"""Model fixtures shared by every test folder (registered in tests/conftest.py's `pytest_plugins`).

- `tiny_llama_dir` (session): folder of a tiny random Llama with a real ChatML tokenizer, built
  once per test session by `tests.support.tiny_llama.build_tiny_llama`. Treat it as read-only;
  tests that modify a model should build their own copy with `build_tiny_llama(tmp_path)`.
- `real_models_dir` (session): `<repo>/data/models` (gitignored), where the slow tests keep the
  real SmolLM2 conversion so it happens once per machine, not once per run.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    from tests.support.tiny_llama import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def real_models_dir() -> Path:
    path = REPO / "data" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
