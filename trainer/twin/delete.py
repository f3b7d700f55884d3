"""`delete_twin`: every row and file of a twin, and no copy of its words left in the database file.

The deletion itself is `bot.persona.removal.delete_member_persona` (rows in one transaction on a
`secure_delete` connection, WAL truncated, the persona's folders under the data directory removed);
this adds the twin's own checks and error type. Only a shipped persona is refused.
"""
from __future__ import annotations

import aiosqlite

from bot.persona.loader import PersonaError
from bot.persona.removal import delete_member_persona, is_shipped
from bot.settings import Settings
from trainer.twin import TwinError



async def delete_twin(db: aiosqlite.Connection, settings: Settings, name: str) -> dict:
    from bot.store.twins import get_twin

    if is_shipped(settings, name):
        raise TwinError(f"{name!r} is a shipped persona, not a twin; it cannot be deleted here")
    if await get_twin(db, name) is None and not (settings.core.member_personas_dir / name).exists():
        raise TwinError(f"no twin called {name!r}")
    try:
        report = await delete_member_persona(db, settings, name)
    except PersonaError as exc:
        raise TwinError(str(exc)) from exc
    return {"twin": name, **{k: v for k, v in report.items() if k != "persona"}}


async def delete_member_twins(db: aiosqlite.Connection, settings: Settings, member_id: str) -> list[str]:
    """Forgetting a member: every twin they control goes, files included (`personabot privacy forget`)."""
    from bot.store.twins import list_twins

    names = [t.persona for t in await list_twins(db, str(member_id))]
    for name in names:
        await delete_twin(db, settings, name)
    return names
