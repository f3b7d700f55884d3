"""Forget propagation: a member's data deleted → datasets that held it stale → models tainted.

`on_forget(db, user_id)` is the trainer's hook for `bot.store.privacy.forget_user` (the privacy CLI
and `/privacy forget` pass it). It runs before the member's rows are deleted and:

- marks every dataset version that contains the member's data `stale` (`dataset_members`) and
  deletes its example files (train/val JSONL, the HF copy), keeping the manifest for audit;
- drops the reply pairs of human reviews of models trained on those datasets (their contexts
  quote the datasets' conversations);
- marks every model version trained on one of those datasets `tainted`. A tainted *active*
  version makes the next scheduled run retrain even without new examples (the member's data is
  gone from the store by then, so the new dataset leaves it out); `personabot trainer --force
  --persona NAME` retrains at once.

The member's rows are deleted by `forget_user` right after this hook, in the same transaction, on a
connection with `secure_delete` on, and `forget_user` then truncates the WAL (`purge_deleted`), so
no copy of their words survives in the database file; the example files go here, by `purge_examples`.

The reasons written to the registry do not name the member: keeping their id there would keep
data about them. `audit_user(db, user_id)` answers "which versions contain this member's data"
for `personabot privacy audit --user ID`, from the same links, before or after forgetting.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import aiosqlite

from bot.store import registry, reviews
from bot.store.db import utcnow

log = logging.getLogger(__name__)

STALE_REASON = "contains data of a member who asked to be forgotten ({when})"
TAINT_REASON = "trained on dataset {dataset} of {persona}, which held data of a member who asked to be forgotten ({when})"


@dataclass
class DatasetRef:
    id: int
    persona: str
    version: str           # folder name, e.g. "v3" (what model versions record)
    status: str
    stale_reason: str | None = None


@dataclass
class UserAudit:
    user_id: str
    datasets: list[DatasetRef] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)          # name, persona, status, tainted, dataset_version
    stored_messages: int = 0                                   # messages still stored (not yet forgotten)
    approved_not_yet_trained: int = 0                          # approved replies not in any dataset yet

    @property
    def active_models(self) -> list[str]:
        return [m["name"] for m in self.models if m["status"] == "active"]

    def to_dict(self) -> dict:
        return {"user_id": self.user_id, "datasets": [asdict(d) for d in self.datasets], "models": self.models,
                "active_models": self.active_models, "stored_messages": self.stored_messages,
                "approved_not_yet_trained": self.approved_not_yet_trained}


def _labels(ref: DatasetRef) -> set[str]:
    """Ways a model version may name this dataset version."""
    number = ref.version.lstrip("v")
    return {ref.version, number, f"v{number}", f"{ref.persona}/{ref.version}"}


async def _dataset_paths(db: aiosqlite.Connection, ids: list[int]) -> list[str]:
    marks = ",".join("?" * len(ids))
    async with db.execute(f"SELECT path FROM dataset_versions WHERE id IN ({marks}) AND path IS NOT NULL", ids) as cur:
        return [r[0] for r in await cur.fetchall()]


async def datasets_with_member(db: aiosqlite.Connection, user_id: str) -> list[DatasetRef]:
    async with db.execute(
        "SELECT d.id, d.persona, d.path, d.version, d.status, d.stale_reason FROM dataset_versions d "
        "JOIN dataset_members m ON m.dataset_id = d.id WHERE m.member_id = ? ORDER BY d.persona, d.version", (user_id,),
    ) as cur:
        rows = await cur.fetchall()
    refs = []
    for r in rows:
        folder = str(r["path"]).rstrip("/").rsplit("/", 1)[-1] if r["path"] else f"v{r['version']}"
        refs.append(DatasetRef(r["id"], r["persona"], folder, r["status"], r["stale_reason"]))
    return refs


async def models_trained_on(db: aiosqlite.Connection, refs: list[DatasetRef]) -> list[registry.ModelVersion]:
    found: dict[str, registry.ModelVersion] = {}
    for ref in refs:
        for v in await registry.versions_trained_on(db, sorted(_labels(ref))):
            if v.persona == ref.persona:
                found[v.name] = v
    return list(found.values())


async def on_forget(db: aiosqlite.Connection, user_id: str) -> None:
    """The forget hook: stale datasets, tainted models (see the module docstring)."""
    from trainer.dataset.versions import mark_stale, purge_examples

    refs = await datasets_with_member(db, user_id)
    if not refs:
        return
    when = utcnow()[:10]
    reason = STALE_REASON.format(when=when)
    await mark_stale(db, [r.id for r in refs], reason)
    # The store forgets the member's rows; the dataset files on disk must not keep their words either.
    for path in await _dataset_paths(db, [r.id for r in refs]):
        purge_examples(path, reason)
    by_label = {(ref.persona, label): ref for ref in refs for label in _labels(ref)}
    trained = await models_trained_on(db, refs)
    # Human reviews of those models quote contexts from the same datasets.
    await reviews.forget_pairs(db, [v.name for v in trained])
    for version in trained:
        ref = by_label.get((version.persona, version.dataset_version or ""))
        if version.tainted or ref is None:
            continue
        await registry.mark_tainted(db, version.name, TAINT_REASON.format(dataset=ref.version, persona=ref.persona, when=when))
        log.info("%s is tainted: its dataset %s held a forgotten member's data%s", version.name, ref.version,
                 " (active: the next scheduled run retrains)" if version.status == "active" else "")


async def audit_user(db: aiosqlite.Connection, user_id: str) -> UserAudit:
    """Which dataset and model versions contain the member's data, and what is still stored."""
    audit = UserAudit(user_id, await datasets_with_member(db, user_id))
    audit.models = [{"name": v.name, "persona": v.persona, "status": v.status, "tainted": v.tainted,
                     "dataset_version": v.dataset_version} for v in await models_trained_on(db, audit.datasets)]
    async with db.execute("SELECT COUNT(*) FROM messages WHERE author_id = ?", (user_id,)) as cur:
        (audit.stored_messages,) = await cur.fetchone()
    async with db.execute(
        "SELECT COUNT(*) FROM messages a JOIN conversations c ON c.id = a.conversation_id "
        "WHERE a.author_id = ? AND a.role = 'assistant' AND a.curation_status IN ('approved', 'corrected') "
        "AND NOT EXISTS (SELECT 1 FROM dataset_members m JOIN dataset_versions d ON d.id = m.dataset_id "
        "                WHERE m.member_id = a.author_id AND d.persona = c.persona AND d.created_at >= a.curated_at)",
        (user_id,),
    ) as cur:
        (audit.approved_not_yet_trained,) = await cur.fetchone()
    return audit
