"""Imports of a member's upload into their twin: detect the export's kind, list the owner
identities in it, and store only a scrubbed source. No Discord here: the cog passes bytes.

- `check_upload(filename, size, limit)` refuses a file type no importer reads and a file over the
  size limit before anything is downloaded.
- `parse_upload(path, kind=None)` checks a zip is whole (a truncated upload has no central
  directory), tries the importers in `DETECT_ORDER` when no kind is given (`NeedKind` when none
  reads it: the caller asks the member), and returns the parse with the identities found: every
  participant with its number of text messages, the export's own owner first.
- `save_upload(db, twin, parsed, owner_id)` refuses an owner without a text message, pseudonymises
  every other participant (names, ids) and scrubs PII from every text before the source is saved
  (the report counts what was redacted, by type), so the database never holds the raw export.
The caller deletes the raw file right after `parse_upload` (in a `finally`), whatever happens.
"""
from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from trainer.twin import TwinError

EXTENSIONS = (".zip", ".js", ".json", ".txt", ".csv", ".jsonl")
DETECT_ORDER = ("twitter", "discord-package", "discord-exporter", "telegram", "whatsapp", "facebook-posts",
                "instagram-posts", "facebook", "jsonl", "csv")


class NeedKind(TwinError):
    """No importer recognised the file: ask the member which kind of export it is."""


@dataclass
class Identity:
    id: str
    name: str
    messages: int
    export_owner: bool = False

    def label(self) -> str:
        who = self.name if self.name == self.id else f"{self.name} ({self.id})"
        return f"{who}: {self.messages} message(s)" + (" — the export's owner" if self.export_owner else "")


@dataclass
class ParsedUpload:
    kind: str
    filename: str
    content_hash: str
    result: object                     # trainer.importers.ParseResult
    identities: list[Identity] = field(default_factory=list)


def check_upload(filename: str, size: int, limit_bytes: int) -> None:
    if not filename.lower().endswith(EXTENSIONS):
        raise TwinError(f"`{filename}` is not an export I can read: send the .zip your service gave you, or a "
                        f"{', '.join(EXTENSIONS[1:])} file from it")
    if size > limit_bytes:
        raise TwinError(f"`{filename}` is {size / 2**20:.1f} MB; uploads may be at most {limit_bytes / 2**20:.0f} MB "
                        "(PERSONABOT_TWIN_UPLOAD_MAX_MB). Send only the messages/tweets part of your export")


def _check_zip(path: Path, filename: str) -> None:
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04" and not filename.lower().endswith(".zip"):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise TwinError(f"`{filename}` is a damaged or incomplete zip (was the upload cut short?); send it again") from None
    if bad is not None:
        raise TwinError(f"`{filename}` is a damaged zip ({bad} is corrupt); send it again")


def parse_upload(path: Path, filename: str, kind: str | None = None) -> ParsedUpload:
    from trainer.importers import ImportFormatError, ImportOptions, get_importer, importers
    from trainer.sources import hash_path

    _check_zip(path, filename)
    kinds = [kind] if kind else [k for k in DETECT_ORDER if k in importers()]
    errors = []
    for k in kinds:
        try:
            result = get_importer(k).parse(path, ImportOptions())
        except ImportFormatError as exc:
            errors.append(f"{k}: {exc}")
            continue
        except (UnicodeError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OSError) as exc:
            errors.append(f"{k}: {type(exc).__name__}")
            continue
        if result.messages:
            return ParsedUpload(k, filename, hash_path(path), result, _identities(result))
        errors.append(f"{k}: no messages")
    if kind:
        raise TwinError(f"`{filename}` could not be read as {kind}: {errors[0].split(': ', 1)[-1].replace(str(path), filename)}")
    raise NeedKind(f"I couldn't tell what kind of export `{filename}` is. Run /twin import again with the `kind` option "
                   f"(one of: {', '.join(DETECT_ORDER)})")


def _identities(result) -> list[Identity]:
    counts = Counter(m.sender_id for m in result.messages if m.kind == "text")
    ids = dict(result.participants)
    for m in result.messages:
        if m.kind != "system":
            ids.setdefault(m.sender_id, m.sender_name)
    out = [Identity(pid, name or pid, counts.get(pid, 0), pid in result.owner_ids) for pid, name in ids.items()]
    out.sort(key=lambda i: (not i.export_owner, -i.messages, i.name))
    return out


async def save_upload(db: aiosqlite.Connection, twin: str, owner_name: str, parsed: ParsedUpload, owner_id: str) -> dict:
    from trainer.dataset.pii import Scrubber
    from trainer.sources import save_source

    result = parsed.result
    mine = [m for m in result.messages if m.sender_id == owner_id and m.kind == "text"]
    if not mine:
        raise TwinError(f"`{parsed.filename}` has no text messages by {result.participants.get(owner_id, owner_id)!r}; "
                        "choose the identity that is you, or upload another export")
    scrubber = Scrubber(owner_pseudonym=owner_name)
    owner_label = result.participants.get(owner_id) or owner_id
    scrubber.add_participant(owner_label, owner=True)
    pseudonym = {pid: (owner_label if pid == owner_id else scrubber.add_participant(name or pid))
                 for pid, name in sorted(result.participants.items())}
    for m in result.messages:
        if m.sender_id != owner_id and m.sender_id != "system":
            alias = pseudonym.get(m.sender_id) or scrubber.pseudonym(m.sender_name or m.sender_id)
            m.sender_id = m.sender_name = alias
    texts = scrubber.scrub_many([m.text for m in result.messages], result.region)     # the export's phone region, if it shows one
    for m, text in zip(result.messages, texts):
        m.text = text
    result.participants = {owner_id: owner_label, **{v: v for k, v in pseudonym.items() if k != owner_id}}
    result.owner_ids = {owner_id}
    saved = await save_source(db, persona=twin, kind=parsed.kind, label=parsed.filename, content_hash=parsed.content_hash,
                              result=result, provenance={"kind": parsed.kind, "path": parsed.filename, "owner": [owner_id],
                                                         "participants": result.participants, "scrubbed_at_import": True,
                                                         "region": result.region, "region_from": result.region_from})
    by_kind = Counter(m.kind for m in result.messages)
    convs: dict[str, bool] = {}          # conversation -> only the owner wrote text in it (posts)
    for m in result.messages:
        convs[m.conversation] = convs.get(m.conversation, True) and (m.sender_id == owner_id or m.kind != "text")
    posts_like = sum(convs.values())
    return {"source_id": saved.id, "created": saved.created, "kind": parsed.kind, "messages": len(result.messages),
            "your_messages": len(mine), "sessions": len(convs), "posts": posts_like,
            "pii_redacted": {k: v for k, v in scrubber.report().items() if v}, "skipped": dict(result.skipped),
            "by_kind": dict(by_kind)}


def report_text(twin_label: str, report: dict) -> str:
    if not report["created"]:
        return f"This export was already imported into {twin_label}; nothing changed."
    pii = ", ".join(f"{k} {n}" for k, n in report["pii_redacted"].items()) or "none found"
    skipped = ", ".join(f"{k} {n}" for k, n in sorted(report["skipped"].items())) or "nothing"
    return (f"Imported into {twin_label} ({report['kind']}): {report['messages']} messages "
            f"({report['your_messages']} yours) in {report['sessions']} conversation(s)/thread(s), "
            f"{report['posts']} of them posts-only.\nPII redacted: {pii}.\nSkipped: {skipped}.\n"
            "Your upload was deleted; only the scrubbed messages are kept. Next: /twin build")
