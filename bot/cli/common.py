"""Shared CLI plumbing: settings from the context, a rich console, async runner, JSON output."""
from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Coroutine, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from bot.settings import Settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print a machine-readable JSON report instead of text.")


def settings_from(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback (`main.py`)."""
    root = ctx.find_root()
    if root.obj is None:
        from bot.settings import load_settings

        root.obj = load_settings()
    return root.obj


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a new event loop: uvloop's where it is installed (the serving
    path spends a large share of its CPU in the event loop and its sockets), else asyncio's."""
    try:
        import uvloop
    except ImportError:   # Windows, or a trimmed install: asyncio's loop does the same, a bit slower
        return asyncio.run(coro)
    return uvloop.run(coro)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print a one-line error (no traceback) and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_persona_or_exit(ctx: typer.Context, name: str):
    from bot.persona import PersonaError, load_persona, persona_folders

    dirs = settings_from(ctx).core.persona_dirs()
    folders = persona_folders(dirs)
    if name not in folders:
        known = ", ".join(folders) or "none"
        where = " or ".join(str(d) for d in dirs)
        raise fail(f"unknown persona {name!r} in {where} (known: {known})")
    try:
        return load_persona(folders[name])
    except PersonaError as exc:
        raise fail(str(exc))
