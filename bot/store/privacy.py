"""Export and forget across every store of member data.

Each store module that keeps member data provides `export_user(db, user_id) -> dict` and
`delete_user(db, user_id) -> int`, and is listed in `STORES` (or added with `register`). Forgetting
is one transaction, followed by `purge_deleted` (secure_delete + WAL checkpoint: no deleted words
left in free pages or the WAL): the `on_forget` hooks (the trainer uses one to mark dataset versions stale and
adapters tainted) and every deleter commit together, or, if anything fails or the process dies
half-way, nothing is deleted.
"""
from __future__ import annotations

import importlib
from typing import Awaitable, Callable, Sequence

import aiosqlite

from bot.store.db import purge_deleted, transaction

# Module paths, imported lazily so the bot does not import trainer code at start-up.
# Order matters for deletion: dependants before the member row.
STORES: list[str] = [
    "bot.store.feedback",
    "bot.store.exchanges",
    "bot.store.channels",
    "bot.store.curation",
    "bot.store.twins",
    "bot.store.reviews",
    "bot.store.consent",
]

ForgetHook = Callable[[aiosqlite.Connection, str], Awaitable[None]]


async def trainer_forget_hook(db: aiosqlite.Connection, user_id: str) -> None:
    """Mark dataset versions containing the member stale and the models trained on them tainted.

    Imported when a member is forgotten, not at start-up, and skipped when the trainer isn't installed.
    """
    try:
        from trainer.forget import on_forget
    except ImportError:
        return
    await on_forget(db, user_id)


DEFAULT_HOOKS: tuple[ForgetHook, ...] = (trainer_forget_hook,)


def register(module_path: str) -> None:
    """Add a store module (before `bot.store.consent`, which deletes the member row last)."""
    if module_path not in STORES:
        STORES.insert(len(STORES) - 1, module_path)


async def export_user(db: aiosqlite.Connection, user_id: str) -> dict:
    """Everything stored about a member, as one JSON-serialisable dict keyed by store."""
    out: dict = {"user_id": user_id}
    for path in STORES:
        module = importlib.import_module(path)
        out[path.rsplit(".", 1)[-1]] = await module.export_user(db, user_id)
    return out


async def forget_user(db: aiosqlite.Connection, user_id: str, hooks: Sequence[ForgetHook] | None = None) -> dict[str, int]:
    """Delete everything stored about a member. Returns rows deleted per store.

    `hooks` default to `DEFAULT_HOOKS` (the trainer's propagation), so every caller propagates.
    """
    counts: dict[str, int] = {}
    modules = [importlib.import_module(path) for path in STORES]   # imported before the transaction opens
    async with transaction(db):
        for hook in DEFAULT_HOOKS if hooks is None else hooks:
            # Hooks run first: they need to see which rows belonged to the member before they go.
            await hook(db, user_id)
        for path, module in zip(STORES, modules):
            counts[path.rsplit(".", 1)[-1]] = await module.delete_user(db, user_id)
    # secure_delete zeroed the rows' pages; the checkpoint moves those into the file and empties the WAL.
    await purge_deleted(db)
    return counts
