"""Who may curate a persona: members with Manage Server, or with the persona's `[curation] curator_role`.

The role is matched by name (case-insensitive) or by id. The Discord layer asks this on every
interaction (command, button, modal), whatever command permissions the server set in Discord.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from bot.persona.spec import PersonaSpec

REFUSAL = "Only members with Manage Server or this persona's curator role can curate."


def has_curator_role(spec: PersonaSpec, roles: Iterable[tuple[str, str]]) -> bool:
    """`roles`: (id, name) of the member's roles."""
    wanted = (spec.curation.curator_role or "").strip()
    if not wanted:
        return False
    return any(wanted == rid or wanted.lower() == name.lower() for rid, name in roles)


def may_curate(spec: PersonaSpec, *, manage_guild: bool, roles: Iterable[tuple[str, str]]) -> bool:
    return manage_guild or has_curator_role(spec, roles)


def curatable(personas: Mapping[str, PersonaSpec], *, manage_guild: bool, roles: Iterable[tuple[str, str]]) -> list[str]:
    """Names of the personas this member may curate, sorted."""
    roles = list(roles)
    return sorted(name for name, spec in personas.items() if may_curate(spec, manage_guild=manage_guild, roles=roles))
