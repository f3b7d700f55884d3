"""`personabot trainer` through the real CLI app (the loop itself is tested in test_loop.py)."""
import json

from typer.testing import CliRunner


def cli(*args):
    from bot.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_trainer_cli_guards_and_status(settings):
    r = cli("trainer", "--force")
    assert r.exit_code == 2 and "--force needs --persona NAME" in r.stderr
    r = cli("trainer", "--force", "--persona", "bob")
    assert r.exit_code == 1 and "unknown persona 'bob'" in r.stderr
    r = cli("trainer")   # the shipped personas have no schedule enabled
    assert r.exit_code == 1 and "nothing to schedule" in r.stderr
    r = cli("trainer", "--once")
    assert r.exit_code == 0 and "No persona has [schedule] enabled" in r.stdout
    r = cli("trainer", "--status", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"next_runs": {}, "runs": []}
