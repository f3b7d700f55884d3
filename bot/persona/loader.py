"""Load and validate persona folders.

`load_persona(folder)` reads `persona.toml`; every problem becomes one `PersonaError` listing each
bad field as `file: field.path: what was expected (got …)`.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Sequence

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
    return spec.model_copy(update={"folder": folder, "lore": _card_lorebook(spec, folder)})


def _card_lorebook(spec: PersonaSpec, folder: Path):
    """The lorebook of an imported card, read from its verbatim card.json (None when it has none)."""
    if spec.card is None:
        return None
    import json

    from bot.persona.lorebook import LorebookError, parse_lorebook

    path = folder / spec.card.file
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PersonaError(f"{folder / SPEC_FILE}: card.file: {path.name} is missing from the persona folder") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PersonaError(f"{path}: not valid JSON: {exc}") from None
    data = raw.get("data", raw) if isinstance(raw, dict) and raw.get("spec") else raw
    book = data.get("character_book") if isinstance(data, dict) else None
    if not isinstance(book, dict):
        return None
    try:
        return parse_lorebook(book, "data.character_book")
    except LorebookError as exc:
        raise PersonaError(f"{path}: {exc}") from None


PersonaDirs = Path | str | Sequence[Path | str]


def _as_dirs(dirs: PersonaDirs) -> list[Path]:
    return [Path(dirs)] if isinstance(dirs, (str, Path)) else [Path(d) for d in dirs]


def persona_folders(dirs: PersonaDirs) -> dict[str, Path]:
    """Name → folder for every persona in `dirs`, in order; an earlier folder's persona wins a name.

    Callers pass `CoreSettings.persona_dirs()`: the shipped personas first, then the member-created
    ones under the data directory, so a twin or imported card can never shadow TIM.
    """
    found: dict[str, Path] = {}
    for root in _as_dirs(dirs):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            # A hidden folder is not a persona: `.deleting-*` is one being deleted (bot.persona.removal).
            if not folder.name.startswith(".") and (folder / SPEC_FILE).is_file():
                found.setdefault(folder.name, folder)
    return dict(sorted(found.items()))


def list_persona_names(dirs: PersonaDirs) -> list[str]:
    return list(persona_folders(dirs))


def find_persona_folder(dirs: PersonaDirs, name: str) -> Path | None:
    return persona_folders(dirs).get(name)


def load_personas(dirs: PersonaDirs) -> dict[str, PersonaSpec]:
    """Every persona in the folders; raises one PersonaError that lists all invalid ones."""
    specs, problems = {}, []
    for name, folder in persona_folders(dirs).items():
        try:
            specs[name] = load_persona(folder)
        except PersonaError as exc:
            problems.append(str(exc))
    if problems:
        raise PersonaError("\n".join(problems))
    return specs
