"""Importing one export into the sources store: parse, check the owner, hash, save.

`import_export` is what `personabot import` runs. Re-importing content already stored for the
persona is a no-op (the hash is checked before parsing, so it is also cheap). An export whose
owner cannot be identified is refused with the list of participants to choose from, because a
dataset with the wrong owner trains the persona on someone else's voice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from trainer._gc import gc_long_lived, gc_paused
from trainer.importers import ImportFormatError, ImportOptions, get_importer
from trainer.importers.base import Problem
from trainer.sources import find_source, hash_path, result_counts, save_source


class OwnerNotFound(ImportFormatError):
    """No message of the export belongs to the owner given (or none was given where one is needed)."""


@dataclass
class ImportReport:
    source_id: int
    created: bool
    kind: str
    path: str
    content_hash: str
    counts: dict
    owner_ids: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    region: str | None = None          # the phone region stored for the source's PII scrubbing
    region_from: str | None = None

    def as_dict(self, max_problems: int = 50) -> dict:
        return {
            "source_id": self.source_id, "created": self.created, "kind": self.kind, "path": self.path,
            "content_hash": self.content_hash, "counts": self.counts, "owner_ids": self.owner_ids,
            "problems": [str(p) for p in self.problems[:max_problems]], "problems_total": len(self.problems),
            "region": self.region, "region_from": self.region_from,
        }


async def import_export(db: aiosqlite.Connection, *, persona: str, kind: str, path: Path, options: ImportOptions) -> ImportReport:
    with gc_long_lived():           # the parsed messages live until they are saved
        return await _import_export(db, persona=persona, kind=kind, path=path, options=options)


async def _import_export(db: aiosqlite.Connection, *, persona: str, kind: str, path: Path, options: ImportOptions) -> ImportReport:
    importer = get_importer(kind)
    path = Path(path)
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or folder")
    digest = hash_path(path)
    existing = await find_source(db, persona, digest)
    if existing is not None:
        import json

        return ImportReport(existing["id"], False, kind, str(path), digest, json.loads(existing["counts"]))
    try:
        with gc_paused():           # synchronous; allocates one object per message, all kept
            result = importer.parse(path, options)
    except ImportFormatError:
        raise
    except (UnicodeError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OSError) as exc:
        # A malformed file that slipped past the importer's own checks still gets one line, not a traceback.
        raise ImportFormatError(f"{path}: could not read as {kind} ({type(exc).__name__}: {exc})") from None
    if not result.messages:
        raise ImportFormatError(f"{path}: no messages could be read as {kind}" +
                                (f" (first problem: {result.problems[0]})" if result.problems else ""))
    owners = set(result.owner_ids) & {m.sender_id for m in result.messages}
    if not owners:
        names = sorted({f"{m.sender_name} (id {m.sender_id})" if m.sender_name != m.sender_id else m.sender_id
                        for m in result.messages if m.kind != "system"})
        shown = ", ".join(names[:15]) + (" ..." if len(names) > 15 else "")
        hint = "no owner given" if not options.owner else f"owner {', '.join(options.owner)!r} sent no message"
        raise OwnerNotFound(f"{path}: {hint}; pass --owner with an id or exact name among: {shown}")
    result.owner_ids = owners
    region, region_from = (options.region, "--region") if options.region else (result.region, result.region_from)
    provenance = {"kind": kind, "path": str(path.resolve()), "date_order": options.date_order,
                  "owner": list(options.owner), "participants": result.participants,
                  "region": region, "region_from": region_from}
    saved = await save_source(db, persona=persona, kind=kind, label=path.name, content_hash=digest,
                              result=result, provenance=provenance)
    return ImportReport(saved.id, saved.created, kind, str(path), digest, saved.counts or result_counts(result),
                        sorted(owners), list(result.problems), region, region_from)
