"""`personabot eval` through the real CLI app: one-line errors (the gate itself is tested in test_gate.py)."""
from typer.testing import CliRunner


def test_eval_without_versions_is_a_one_line_error(settings):
    from bot.cli.main import app

    r = CliRunner().invoke(app, ["eval", "--persona", "tim"])
    assert r.exit_code == 1 and "no version to evaluate for tim (known: none)" in r.stderr
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, ["eval", "--persona", "nobody"])
    assert r.exit_code == 1 and "unknown persona 'nobody'" in r.stderr


def test_eval_rejects_a_bad_judge_spec(settings):
    from bot.cli.main import app

    r = CliRunner().invoke(app, ["eval", "--persona", "tim", "--judge", "gpt4"])
    assert r.exit_code == 1 and '--judge: expected "openai:MODEL", "vllm:MODEL", "local", "local:MODEL" or "none"' in r.stderr
    assert "Traceback" not in r.output
