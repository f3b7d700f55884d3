"""DiscordChatExporter exports: JSON (`{guild, channel, messages}` or a bare list of messages) and CSV
(`AuthorID, Author, Date, Content, Attachments, Reactions`). Both sides of a conversation are there.

Senders are `author.id`; the owner is `--owner` (an id, or a username/nickname matched exactly).
Message types other than Default/Reply (joins, pins, calls) are kind 'system'; a message with only
attachments or stickers is kind 'media'. Replies keep `reference.messageId`.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from trainer.importers._io import Tree, load_json
from trainer.importers._owner import match_owner
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

EXPECTED = "a DiscordChatExporter JSON ({\"messages\": [...]}) or CSV (AuthorID,Author,Date,Content,...) export"
_CONTENT_TYPES = {"default", "reply", "0", "19"}
_EXT = {"png": "image", "jpg": "image", "jpeg": "image", "webp": "image", "gif": "gif", "mp4": "video", "mov": "video",
        "webm": "video", "mp3": "audio", "ogg": "audio", "wav": "audio", "pdf": "document", "txt": "document"}


def attachment_type(name: str) -> str:
    name = name.split("?", 1)[0].lower()
    return _EXT.get(name.rsplit(".", 1)[-1], "file") if "." in name else "file"


def parse_time(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        pass
    try:
        from dateutil import parser as du

        return du.parse(str(value))
    except (ValueError, OverflowError, TypeError):
        return None


class DiscordExporterImporter:
    kind = "discord-exporter"
    description = "DiscordChatExporter export of a channel or DM: JSON or CSV."

    def parse(self, path: Path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(r"\.(json|csv)$")
        if not names:
            raise ImportFormatError(f"{path}: no .json or .csv file; expected {EXPECTED}")
        result = ParseResult()
        self._aliases: dict[str, set[str]] = {}
        for name in names:
            text = tree.read_text(name)
            file = tree.display(name)
            if name.lower().endswith(".csv") or (not text.lstrip().startswith(("{", "[")) and "AuthorID" in text[:200]):
                self._csv(text, file, Path(name).stem, result)
            else:
                self._json(text, file, Path(name).stem, result)
        result.owner_ids = match_owner(result, options.owner, str(path), id_forms=lambda pid: tuple(self._aliases.get(pid, ())))
        return result

    def _json(self, text: str, file: str, stem: str, result: ParseResult) -> None:
        data = load_json(text, file, EXPECTED)
        conversation = stem
        if isinstance(data, dict):
            messages = data.get("messages")
            channel = data.get("channel") if isinstance(data.get("channel"), dict) else {}
            if channel:
                conversation = f"{channel.get('name') or stem} ({channel.get('id', '')})"
        else:
            messages = data
        if not isinstance(messages, list):
            raise ImportFormatError(f"{file}: no messages list; expected {EXPECTED}")
        seq = len([m for m in result.messages if m.conversation == conversation])
        for i, msg in enumerate(messages):
            where = f"message {i}"
            if not isinstance(msg, dict) or not isinstance(msg.get("author"), dict) or msg["author"].get("id") is None:
                result.skip(Problem(file, where, "not a message with an author id"), "bad_record")
                continue
            author = msg["author"]
            sender = str(author["id"])
            sender_name = str(author.get("nickname") or author.get("name") or sender)
            content = str(msg.get("content") or "")
            mtype = str(msg.get("type", "Default")).lower()
            kind = "text" if mtype in _CONTENT_TYPES else "system"
            attachments = msg.get("attachments") or []
            if kind == "text" and not content.strip():
                if attachments and isinstance(attachments, list):
                    first = attachments[0] if isinstance(attachments[0], dict) else {}
                    content, kind = f"<media:{attachment_type(str(first.get('fileName') or first.get('url') or ''))}>", "media"
                elif msg.get("stickers"):
                    content, kind = "<media:sticker>", "media"
                else:
                    result.skip(Problem(file, where, "empty message"), "empty")
                    continue
            ref = msg.get("reference") if isinstance(msg.get("reference"), dict) else {}
            if kind != "system":
                result.participants.setdefault(sender, sender_name)
                # Both the username and the nickname are exact names the owner may be given as.
                self._aliases.setdefault(sender, set()).update(str(v) for v in (author.get("name"), author.get("nickname")) if v)
            result.messages.append(RawMessage(
                conversation, seq, parse_time(msg.get("timestamp")), sender if kind != "system" else "system", sender_name,
                content, kind, reply_to=str(ref["messageId"]) if ref.get("messageId") else None,
                external_id=str(msg["id"]) if msg.get("id") is not None else None))
            seq += 1

    def _csv(self, text: str, file: str, stem: str, result: ParseResult) -> None:
        reader = csv.DictReader(io.StringIO(text))
        fields = {f.strip().lower(): f for f in (reader.fieldnames or [])}
        if not {"authorid", "content"} <= set(fields):
            raise ImportFormatError(f"{file}: missing AuthorID/Content columns; expected {EXPECTED}")
        seq = 0
        try:
            for line_index, row in enumerate(reader, 2):
                sender = (row.get(fields["authorid"]) or "").strip()
                if not sender:
                    result.skip(Problem(file, f"row {line_index}", "no AuthorID"), "no_sender")
                    continue
                name = (row.get(fields.get("author", ""), "") or sender).strip()
                content = row.get(fields["content"]) or ""
                kind = "text"
                attachments = (row.get(fields.get("attachments", ""), "") or "").strip()
                if not content.strip():
                    if attachments:
                        content, kind = f"<media:{attachment_type(attachments.split(',')[0])}>", "media"
                    else:
                        result.skip(Problem(file, f"row {line_index}", "empty message"), "empty")
                        continue
                result.participants.setdefault(sender, name)
                result.messages.append(RawMessage(stem, seq, parse_time(row.get(fields.get("date", ""))), sender, name, content, kind))
                seq += 1
        except csv.Error as exc:
            result.skip(Problem(file, f"line {reader.line_num}", f"CSV error: {exc}"), "bad_csv")
