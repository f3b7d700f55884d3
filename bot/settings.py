"""Typed settings, read from the environment and `.env`.

Settings are built by the entry point (`load_settings()` in `main()`), never at import time, so
tests and tools can build their own. Each section has its own environment prefix; secrets are
read from the environment by name and never stored in persona files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV_FILE = ".env"


class _Section(BaseSettings):
    model_config = SettingsConfigDict(env_file=_ENV_FILE, env_file_encoding="utf-8", extra="ignore")


class CoreSettings(_Section):
    """Where state lives and which persona answers by default (prefix `PERSONABOT_`)."""

    model_config = SettingsConfigDict(env_prefix="PERSONABOT_", env_file=_ENV_FILE, extra="ignore")

    data_dir: Path = Field(Path("data"), description="All runtime state: database, sources, datasets, adapters, models.")
    personas_dir: Path | None = Field(None, description="Folder of persona specs; defaults to ./personas, else the one beside the package.")
    default_persona: str = Field("tim", description="Persona used by `chat` and `run` when none is named.")
    log_level: str = Field("INFO", description="Python logging level.")
    consent_policy_version: str = Field("1", description="Version of the consent text members agree to; stored with each decision.")
    local_device: str = Field("auto", description="Device for the local backend: auto, cpu, cuda.")
    # Named `models_dir_override` because `models_dir` is the property everyone reads; the
    # environment variable is still the natural PERSONABOT_MODELS_DIR.
    models_dir_override: Path | None = Field(
        None,
        validation_alias=AliasChoices("PERSONABOT_MODELS_DIR", "models_dir_override"),
        description="Cached/converted models (env PERSONABOT_MODELS_DIR); defaults to <data_dir>/models. Lets several checkouts share one conversion.",
    )
    # -- operations (issue 12) --
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text, or one JSON object per line (`json`).")
    metrics_port: int | None = Field(
        None, ge=0, le=65535,
        description="Serve /healthz and /metrics (Prometheus) on this port; unset: off. 0 picks a free port.",
    )
    metrics_host: str = Field("127.0.0.1", description="Address the metrics/health server listens on (compose: 0.0.0.0).")
    twin_upload_max_mb: float = Field(
        100.0, gt=0, description="Largest export a member may upload with /twin import, in MB (bigger: refused before download).",
    )
    twin_model: str | None = Field(
        None, description="Base model of twins members create with /twin create (default: the twin template's embedded SmolLM2).",
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="On SIGTERM: seconds in-flight replies get to finish before they end with a notice.",
    )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "personabot.db"

    @property
    def adapters_dir(self) -> Path:
        """Trained LoRA adapters, `<adapters_dir>/<persona>/<version name>/`, always absolute: with
        vLLM these paths are passed to `/v1/load_lora_adapter`, and the server must see this folder
        at the same path (compose mounts it there read-only)."""
        return (self.data_dir / "adapters").absolute()

    @property
    def models_dir(self) -> Path:
        return self.models_dir_override if self.models_dir_override is not None else self.data_dir / "models"

    @property
    def member_personas_dir(self) -> Path:
        """Member-created personas (digital twins, imported cards): state, never in the repository."""
        return self.data_dir / "personas"

    def persona_dirs(self) -> list[Path]:
        """Where personas are looked up, shipped ones first (they win a name clash)."""
        return [self.resolved_personas_dir(), self.member_personas_dir]

    def resolved_personas_dir(self) -> Path:
        if self.personas_dir is not None:
            return self.personas_dir
        cwd = Path("personas")
        if cwd.is_dir():
            return cwd
        # An editable/source install keeps the shipped personas beside the packages.
        return Path(__file__).resolve().parent.parent / "personas"


class DiscordSettings(_Section):
    """The Discord connection (prefix `DISCORD_`)."""

    model_config = SettingsConfigDict(env_prefix="DISCORD_", env_file=_ENV_FILE, extra="ignore")

    token: str | None = Field(None, description="Bot token; when unset, `personabot run` opens the terminal chat instead.")
    api_base: str | None = Field(None, description="REST base URL of a Discord-compatible server (default: Discord's).")
    gateway_url: str | None = Field(None, description="Gateway websocket URL of a Discord-compatible server.")
    dev_guild: int | None = Field(None, description="Sync slash commands to this guild only (instant), else globally.")
    dms_enabled: bool = Field(True, description="Answer direct messages.")
    max_concurrent_generations: int = Field(8, description="Generations running at once across all conversations.")
    max_queue: int = Field(256, description="Generations waiting for a slot; beyond this members get a 'busy' reply.")
    edit_interval_s: float = Field(1.0, description="Minimum seconds between edits of one streaming reply.")
    requests_per_second: float = Field(45.0, gt=0, description="Budget for all REST requests to Discord, shared by "
                                       "every reply (Discord allows about 50/s per bot).")


class OpenAISettings(_Section):
    """The OpenAI API (prefix `OPENAI_`)."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", env_file=_ENV_FILE, extra="ignore")

    api_key: str | None = Field(None, description="API key for the OpenAI backend.")
    base_url: str = Field("https://api.openai.com/v1", description="API base URL.")
    timeout_s: float = Field(60.0, description="Per-request timeout.")
    max_retries: int = Field(4, description="Retries on 429/5xx/connection errors, with backoff.")


class VLLMSettings(_Section):
    """A vLLM OpenAI-compatible server (prefix `VLLM_`)."""

    model_config = SettingsConfigDict(env_prefix="VLLM_", env_file=_ENV_FILE, extra="ignore")

    base_url: str = Field("http://localhost:8000/v1", description="vLLM server base URL.")
    api_key: str | None = Field(None, description="vLLM --api-key, if the server was started with one.")
    timeout_s: float = Field(60.0, description="Per-request timeout.")
    max_retries: int = Field(4, description="Retries on 429/5xx/connection errors, with backoff.")


class Settings:
    """All sections together. Build with `load_settings()`."""

    def __init__(self, core: CoreSettings, discord: DiscordSettings, openai: OpenAISettings, vllm: VLLMSettings):
        self.core = core
        self.discord = discord
        self.openai = openai
        self.vllm = vllm


def load_settings(**core_overrides) -> Settings:
    """Read every section from the environment and `.env` (called by entry points and tests)."""
    return Settings(
        core=CoreSettings(**core_overrides),
        discord=DiscordSettings(),
        openai=OpenAISettings(),
        vllm=VLLMSettings(),
    )


class SettingsInvalid(ValueError):
    """A setting in the environment or `.env` has a bad value; the message names each variable."""


def describe_settings_error(exc) -> SettingsInvalid:
    """A pydantic `ValidationError` of one section → one line per bad variable, by its env name."""
    section = next((c for c in (CoreSettings, DiscordSettings, OpenAISettings, VLLMSettings) if c.__name__ == exc.title), None)
    prefix = section.model_config.get("env_prefix", "") if section else ""
    problems = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error.get("loc", ())) or "?"
        name = field if field.isupper() else f"{prefix}{field}".upper()
        given = error.get("input")
        shown = "" if name.endswith(("TOKEN", "KEY")) or given is None else f" (got {str(given)[:60]!r})"
        problems.append(f"{name}: {error.get('msg', 'invalid')}{shown}")
    return SettingsInvalid("invalid setting in the environment or .env: " + "; ".join(problems))
