"""Entry point of the `personabot` console script.

Commands are discovered: every module in `bot/cli/` and `trainer/cli/` with a `register(app)`
function adds its command. Command modules import only typer/rich at module level, so `--help`
and the bot start fast and never pull in torch or training code until a command needs it.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import typer

app = typer.Typer(
    name="personabot",
    help="Host fine-tuned LLM personas in Discord: chat, log with consent, curate, retrain, evaluate and hot-swap.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Path = typer.Option(None, "--data-dir", envvar="PERSONABOT_DATA_DIR", help="Runtime state folder (default ./data)."),
    log_level: str = typer.Option(None, "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Build settings once for every command (from the environment, `.env` and these options)."""
    from dotenv import load_dotenv

    from pydantic import ValidationError

    from bot.settings import describe_settings_error, load_settings

    load_dotenv(".env", override=False)
    overrides = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if log_level is not None:
        overrides["log_level"] = log_level
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        problem = describe_settings_error(exc)
        if ctx.invoked_subcommand == "doctor":
            ctx.obj = problem   # doctor reports it in its table
            return
        from bot.cli.common import fail

        raise fail(str(problem), 2)
    from bot.observability.logs import configure_logging

    configure_logging(settings.core.log_level, settings.core.log_format)
    ctx.obj = settings


def _register_all() -> None:
    for package_name in ("bot.cli", "trainer.cli"):
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError:
            continue
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name.startswith("_") or info.name in {"main", "common"}:
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
