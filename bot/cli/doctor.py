"""`personabot doctor`: check the installation and configuration, in one table.

Each check gives `ok`, `warn` (works, but worth knowing) or `FAIL` (the bot would not start or
could not answer). The command exits 1 when any check fails. Checks, in order:

- settings: the environment and `.env` parse (a bad value is named), and secrets are present where
  a persona needs them. Secret values are never printed: only "set" or "missing";
- Discord token: its shape (three dot-separated base64url parts, the first the bot's id), catching
  the usual paste mistakes (a `Bot ` prefix, quotes, the client secret or application id instead);
- persona specs, one row each, including whether its backend is installed (torch for `local`);
- database migrations: the schema version against the latest this code knows;
- data directory: writable, and its free space;
- each remote backend: reachable, and its model listed (vLLM and OpenAI `GET /v1/models`); for
  vLLM, whether each persona's active adapter is loaded (the bot loads it on start);
- GPU for training: CUDA through torch, when torch is installed.
"""
from __future__ import annotations

import base64
import binascii
import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass

import typer

from bot.cli.common import JSON_OPTION, console, print_json, run_async, settings_from

OK, WARN, FAIL = "ok", "warn", "FAIL"

#: Free space below which the data directory fails (a database write can fail), and warns
#: (datasets, adapters and converted models need gigabytes).
MIN_FREE_BYTES = 200 * 1024**2
WARN_FREE_BYTES = 5 * 1024**3

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{17,40}\.[A-Za-z0-9_-]{4,10}\.[A-Za-z0-9_-]{20,}$")


@dataclass
class Row:
    check: str
    status: str
    detail: str


def token_problem(token: str) -> str | None:
    """Why `token` cannot be a Discord bot token, or None when it has the right shape."""
    if token != token.strip():
        return "has spaces or a newline around it"
    if token[:1] in "\"'" or token[-1:] in "\"'":
        return "is wrapped in quotes: remove them in .env"
    if token.lower().startswith("bot "):
        return "starts with 'Bot ': paste the token alone"
    if token.isdigit():
        return "is a number: that is the application or user id, not the token"
    if "." not in token and re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
        return "looks like the OAuth2 client secret: copy the token from Developer Portal → Bot → Reset Token"
    if not _TOKEN.match(token):
        return "does not have the shape of a bot token (three parts separated by dots)"
    first = token.split(".")[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if not decoded.isdigit():
        return "its first part is not the bot's id: it is not a bot token"
    return None


def _settings_rows(settings, personas) -> list[Row]:
    rows = [Row("settings", OK, "environment and .env parse")]
    token = settings.discord.token
    rows.append(Row("secret DISCORD_TOKEN", OK if token else WARN,
                    "set" if token else "missing: `personabot run` opens the terminal chat instead of Discord"))
    for name, spec in personas.items():
        if spec.model.backend == "openai":
            env = spec.model.api_key_env
            present = bool(os.environ.get(env)) if env else bool(settings.openai.api_key)
            rows.append(Row(f"secret for {name}", OK if present else FAIL,
                            f"{env or 'OPENAI_API_KEY'} {'set' if present else 'missing: the OpenAI backend cannot authenticate'}"))
    if token:
        problem = token_problem(token)
        rows.append(Row("Discord token format", FAIL if problem else OK,
                        f"DISCORD_TOKEN {problem}" if problem else "looks like a bot token"))
    return rows


def _persona_rows(settings) -> tuple[list[Row], dict]:
    from bot.persona import PersonaError, load_persona, persona_folders

    rows, personas = [], {}
    dirs = settings.core.persona_dirs()
    folders = persona_folders(dirs)
    if not folders:
        return [Row("personas", FAIL, f"none found in {' or '.join(str(d) for d in dirs)}")], {}
    local_ready = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft"))
    for name, folder in folders.items():
        try:
            spec = load_persona(folder)
        except PersonaError as exc:
            rows.append(Row(f"persona {name}", FAIL, str(exc)))
            continue
        personas[name] = spec
        if spec.model.backend == "local" and not local_ready:
            rows.append(Row(f"persona {name}", FAIL, "uses the local backend, which is not installed: "
                            "pip install 'personabot[local]' (image: build with WITH_LOCAL=1), or serve it from vLLM"))
        else:
            rows.append(Row(f"persona {name}", OK, f"{spec.model.backend}: {spec.model.model}"))
    return rows, personas


async def _database_row(settings) -> Row:
    from bot.store.db import connect, current_version, latest_version

    try:
        db = await connect(settings.core.db_path)
        try:
            version = await current_version(db)
        finally:
            await db.close()
    except Exception as exc:  # report, don't crash: that's the point of doctor
        return Row("database migrations", FAIL, f"{settings.core.db_path}: {type(exc).__name__}: {exc}")
    latest = latest_version()
    if version > latest:
        return Row("database migrations", FAIL, f"schema {version} is newer than this personabot ({latest}): upgrade the package")
    if version < latest:
        return Row("database migrations", WARN, f"schema {version}/{latest}: applied on the next start, or run `personabot db upgrade`")
    return Row("database migrations", OK, f"schema {version}/{latest}")


def _data_dir_rows(settings) -> list[Row]:
    data_dir = settings.core.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return [Row("data dir writable", FAIL, f"{data_dir}: {exc.strerror or exc}")]
    rows = [Row("data dir writable", OK, str(data_dir.resolve()))]
    free = shutil.disk_usage(data_dir).free
    status = FAIL if free < MIN_FREE_BYTES else WARN if free < WARN_FREE_BYTES else OK
    rows.append(Row("data dir free space", status, f"{free / 1024**3:.1f} GiB free"
                    + ("" if status == OK else " (datasets, adapters and models need several GiB)")))
    return rows


async def _backend_rows(settings, personas) -> list[Row]:
    from bot.backends.base import BackendError
    from bot.backends.pool import BackendPool
    from bot.backends.vllm_admin import VLLMAdmin
    from bot.serving.model_sync import admin_endpoint
    from bot.store import registry
    from bot.store.db import connect

    rows: list[Row] = []
    remote = {n: p for n, p in personas.items() if p.model.backend in ("openai", "vllm")}
    if not remote:
        return rows
    active = {}
    try:
        db = await connect(settings.core.db_path)
        try:
            active = await registry.active_versions(db)
        finally:
            await db.close()
    except Exception:  # no registry yet (an old schema): only the specs' own models are checked
        pass
    pool = BackendPool(settings)
    try:
        for name, spec in remote.items():
            try:
                status = await pool.for_persona(spec).health()
                rows.append(Row(f"backend {name}", OK, status.removeprefix("ok: ")))
            except BackendError as exc:
                rows.append(Row(f"backend {name}", FAIL, f"{spec.model.backend}: {exc}"))
                continue
            version = active.get(name)
            if spec.model.backend != "vllm" or version is None or version.backend != "vllm":
                continue
            base_url, api_key = admin_endpoint(spec.model, settings)
            try:
                async with VLLMAdmin(base_url, api_key, timeout_s=settings.vllm.timeout_s) as admin:
                    loaded = await admin.list_adapters()
            except BackendError as exc:
                rows.append(Row(f"adapter {version.name}", FAIL, str(exc)))
                continue
            if version.name in loaded:
                rows.append(Row(f"adapter {version.name}", OK, f"loaded from {loaded[version.name]}"))
            else:
                rows.append(Row(f"adapter {version.name}", WARN, f"active for {name} but not loaded: the bot loads "
                                f"{version.adapter_path} on start (vLLM must see that path)"))
    finally:
        await pool.aclose()
    return rows


def _gpu_row() -> Row:
    if importlib.util.find_spec("torch") is None:
        return Row("GPU for training", WARN, "torch not installed (the serving image): training runs in the trainer image")
    try:
        import torch

        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            return Row("GPU for training", OK, f"CUDA: {names}")
    except Exception as exc:  # a broken driver is worth a line, not a crash
        return Row("GPU for training", WARN, f"torch could not query CUDA: {type(exc).__name__}")
    return Row("GPU for training", WARN, "no CUDA GPU: local training runs on the CPU (tiny models only)")


async def collect_rows(settings, *, backends: bool = True) -> list[Row]:
    rows = [Row("python", OK if sys.version_info >= (3, 11) else FAIL, sys.version.split()[0])]
    persona_rows, personas = _persona_rows(settings)
    rows += _settings_rows(settings, personas)
    rows += persona_rows
    rows.append(await _database_row(settings))
    rows += _data_dir_rows(settings)
    if backends:
        rows += await _backend_rows(settings, personas)
    rows.append(_gpu_row())
    return rows


def doctor(
    ctx: typer.Context,
    backends: bool = typer.Option(True, "--backends/--no-backends", help="Also contact remote (OpenAI/vLLM) backends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check settings and secrets, the Discord token, personas, migrations, the data directory,
    backends and the GPU, in one table. Exits 1 when something would stop the bot."""
    from rich.markup import escape
    from rich.table import Table

    settings = settings_from(ctx)
    if isinstance(settings, Exception):
        rows = [Row("settings", FAIL, str(settings))]
    else:
        rows = run_async(collect_rows(settings, backends=backends))
    if as_json:
        print_json([{"check": r.check, "status": r.status, "ok": r.status != FAIL, "detail": r.detail} for r in rows])
    else:
        table = Table(title="personabot doctor", show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("detail", overflow="fold")
        style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
        for r in rows:
            table.add_row(escape(r.check), f"[{style[r.status]}]{r.status}[/]", escape(r.detail))
        console.print(table)
    if any(r.status == FAIL for r in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
