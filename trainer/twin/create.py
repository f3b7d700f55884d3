"""`create_twin`: a twin persona folder from the shipped template, under the member personas folder.

The template is the shipped `twin` persona (its probes, topics, profiles and synthetic templates
come along). `persona.toml` gets "NAME (AI twin)" as the display name (the webhook name in Discord:
nobody mistakes the twin for the person), the owner's name as an alias, a description and a system
prompt that name them, and optionally another base model. The folder appears whole or not at all
(`bot.persona.card_files.install_persona_folder`, shared with card import), and the `twins` row
saying who controls it is written only once it exists; if that fails, the folder goes again.
"""
from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import aiosqlite

from bot.persona.spec import PersonaSpec, check_persona_name
from bot.settings import Settings
from trainer.twin import TwinError

TEMPLATE = "twin"
HEADER = ("# A digital twin made by `personabot twin create` from the shipped `twin` template.\n"
          "# Every key is documented in bot/persona/spec.py. Its owner controls it; see README \"Digital twins\".\n")


def template_folder(settings: Settings) -> Path:
    folder = settings.core.resolved_personas_dir() / TEMPLATE
    if not (folder / "persona.toml").is_file():
        raise TwinError(f"the twin template is missing ({folder / 'persona.toml'})")
    return folder


def twin_fields(template: dict, owner_name: str, model: str | None) -> dict:
    fields = dict(template)
    fields.pop("name", None)
    # Marked as AI wherever it speaks (webhook name, persona list, terminal): nobody mistakes it for the person.
    fields["display_name"] = f"{owner_name} (AI twin)"
    fields["aliases"] = [owner_name]
    fields["description"] = f"Digital twin of {owner_name}: writes like them, trained on their own exports."
    fields["system_prompt"] = str(template.get("system_prompt", "")).replace(
        "You are the digital twin of a community member.", f"You are the digital twin of {owner_name}.")
    if model:
        fields["model"] = {**template.get("model", {}), "model": model}
    return fields


async def create_twin(db: aiosqlite.Connection, settings: Settings, name: str, *, owner_name: str,
                      owner_ids: list[str] | tuple[str, ...] = (), discord_owner_id: str | None = None,
                      model: str | None = None) -> PersonaSpec:
    import tomli_w

    from bot.persona import find_persona_folder
    from bot.persona.card_files import install_persona_folder
    from bot.store import twins

    try:
        check_persona_name(name)
    except ValueError as exc:
        raise TwinError(f"twin name {name!r}: {exc}") from None
    owner_name = " ".join(owner_name.split())
    if not owner_name or len(owner_name) > 60:
        raise TwinError("the owner's name must be 1 to 60 characters")
    existing = find_persona_folder(settings.core.persona_dirs(), name)
    if existing is not None or await twins.get_twin(db, name) is not None:
        raise TwinError(f"a persona called {name!r} already exists ({existing or 'in the database'}); choose another name")
    template = template_folder(settings)
    fields = twin_fields(tomllib.loads((template / "persona.toml").read_text(encoding="utf-8")), owner_name, model)

    def fill(tmp: Path) -> None:
        shutil.copytree(template, tmp, dirs_exist_ok=True)
        (tmp / "persona.toml").write_text(HEADER + tomli_w.dumps(fields, multiline_strings=True), encoding="utf-8")

    spec = install_persona_folder(settings.core.member_personas_dir, name, fill, error=TwinError, name_hint="another NAME")
    try:
        await twins.add_twin(db, name, owner_name, list(owner_ids), discord_owner_id)
    except BaseException:
        shutil.rmtree(settings.core.member_personas_dir / name, ignore_errors=True)
        raise
    return spec
