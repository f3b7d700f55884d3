"""The console script end to end, as the README promises:
`printf 'hello\\n/quit\\n' | personabot chat --persona tim` prints one reply and exits 0."""
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_cli(args, stdin, env_extra, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "PERSONABOT_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=timeout)


def test_help_lists_every_job():
    out = run_cli(["--help"], "", {}).stdout
    for command in ("run", "chat", "personas", "import", "synth", "dataset", "train", "eval", "model",
                    "curate", "trainer", "privacy", "db", "doctor"):
        assert f" {command} " in out, f"`personabot --help` does not list {command}"


def test_piped_chat_with_a_local_model_folder(tmp_path, tiny_llama_dir):
    """Fast: a tiny random Llama via a persona whose model is a local folder."""
    personas = tmp_path / "personas" / "tiny"
    personas.mkdir(parents=True)
    (personas / "persona.toml").write_text(
        f'display_name = "Tiny"\nsystem_prompt = "You are Tiny."\n[model]\nmodel = "{tiny_llama_dir}"\n'
        '[sampling]\nmax_tokens = 8\ntemperature = 0.0\n', encoding="utf-8")
    result = run_cli(["chat", "--persona", "tiny"], "hello\n/quit\nnot sent\n",
                     {"PERSONABOT_DATA_DIR": str(tmp_path / "data"), "PERSONABOT_PERSONAS_DIR": str(tmp_path / "personas")})
    assert result.returncode == 0, result.stderr
    # One reply (random weights may put newlines inside it), and nothing after /quit was answered.
    assert result.stdout.startswith("Tiny> ") and result.stdout.count("Tiny> ") == 1
    assert result.stdout.endswith("\n")


@pytest.mark.slow
def test_piped_chat_with_real_smollm2(tmp_path, real_models_dir):
    result = run_cli(["chat", "--persona", "tim"], "What is photosynthesis? Answer in one sentence.\n/quit\n",
                     {"PERSONABOT_DATA_DIR": str(tmp_path / "data"), "PERSONABOT_MODELS_DIR": str(real_models_dir)})
    assert result.returncode == 0, result.stderr
    lines = [l for l in result.stdout.splitlines() if l.strip()]
    assert lines[0].startswith("TIM> ")
    reply = result.stdout.split("TIM> ", 1)[1]
    assert len(reply.split()) >= 4
    assert "User:" not in reply and not reply.lower().lstrip().startswith("tim:")
    assert any(w in reply.lower() for w in ("light", "plant", "sun", "energy", "food"))
