"""The terminal twin journey with the real embedded SmolLM2 (slow: real weights on CPU): create a
twin on the template's own model, import a posts-only Twitter archive, `twin build --max-steps 2`
(dataset → train → eval with the real gate), then chat with it."""
from __future__ import annotations

import json

import pytest

from tests.trainer.twin.test_cli import cli, write_archive  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_twin_build_then_chat_with_smollm2(cli, tmp_path, real_models_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PERSONABOT_MODELS_DIR", str(real_models_dir))
    monkeypatch.setenv("PERSONABOT_LOCAL_DEVICE", "cpu")
    assert cli("twin", "create", "sam", "--owner-name", "Sam").exit_code == 0
    assert cli("import", "twitter", str(write_archive(tmp_path / "twitter.zip")), "--persona", "sam").exit_code == 0
    r = cli("twin", "build", "sam", "--max-steps", "2", "--promote-anyway", "--json")
    assert r.exit_code == 0, r.output
    built = json.loads(r.stdout)
    assert built["version"] == "sam-v1" and built["counts"]["examples_from_posts"] >= 8
    assert built["gate"]["losses"]["candidate"] is not None and built["gate"]["losses"]["base"] is not None
    assert len(built["replies"]) == 3 and built["promoted"] and built["status"] == "active"
    chat = cli("chat", "--persona", "sam", input="what did you do this weekend?\n/quit\n")
    assert chat.exit_code == 0, chat.output
    assert chat.stdout.strip(), "the twin answered nothing"
