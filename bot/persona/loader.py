"""Load and validate persona folders.

`load_persona(folder)` reads `persona.toml`; every problem becomes one `PersonaError` listing each
bad field as `file: field.path: what was expected (got …)`.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from bot.persona.spec import PersonaSpec

SPEC_FILE = "persona.toml"


class PersonaError(ValueError):
    """A persona spec that cannot be used; the message names the file and each bad field."""


def _describe(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (check the spelling; see `personabot personas --help`)"
    if error["type"] == "missing":
        return f"{where}: required but missing"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def load_persona(folder: Path) -> PersonaSpec:
    folder = Path(folder)
    path = folder / SPEC_FILE
    if not path.is_file():
        raise PersonaError(f"{path}: not found (each persona folder needs a {SPEC_FILE})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise PersonaError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "name" in raw and raw["name"] != folder.name:
        raise PersonaError(f"{path}: name: must match the folder name {folder.name!r} (got {raw['name']!r})")
    raw.setdefault("name", folder.name)
    try:
        spec = PersonaSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {_describe(e)}" for e in exc.errors()]
        raise PersonaError("\n".join(lines)) from None
    return spec.model_copy(update={"folder": folder})


def list_persona_names(personas_dir: Path) -> list[str]:
    personas_dir = Path(personas_dir)
    if not personas_dir.is_dir():
        return []
    return sorted(p.name for p in personas_dir.iterdir() if (p / SPEC_FILE).is_file())


def load_personas(personas_dir: Path) -> dict[str, PersonaSpec]:
    """Every persona in the folder; raises one PersonaError that lists all invalid ones."""
    specs, problems = {}, []
    for name in list_persona_names(personas_dir):
        try:
            specs[name] = load_persona(Path(personas_dir) / name)
        except PersonaError as exc:
            problems.append(str(exc))
    if problems:
        raise PersonaError("\n".join(problems))
    return specs
