"""The official Discord data package ("Request all of my data"): a folder or the .zip Discord sends.

Layout: `Account/user.json` (the owner's `id`), `Messages/index.json` (channel id -> name) and one
`Messages/c<id>/` per channel with `channel.json` and `messages.json` (older packages:
`messages.csv` with ID,Timestamp,Contents,Attachments). The package holds only the owner's own
messages, so every message is the owner's; a lone messages.csv/json is accepted too (its owner is
`--owner` or "owner"). Newest-first files are put in time order. The account's `phone` (or else
its `locale`) in user.json gives the phone region for PII scrubbing.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import PurePosixPath

from trainer.dataset.phones import region_from_locale, region_from_number
from trainer.importers._io import Tree, load_json
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage
from trainer.importers.discord_exporter import attachment_type, parse_time

EXPECTED = "a Discord data package (folder or zip with Messages/c<id>/messages.json or messages.csv, and Account/user.json)"
_CHANNEL_FILE = re.compile(r"(^|/)messages/c?(\d+)/messages\.(json|csv)$", re.I)


def _account_region(user: dict, result: ParseResult) -> None:
    """The phone region from the account: its verified `phone` (E.164), else its `locale` ("en-GB")
    at the top level or under `settings`."""
    region = region_from_number(str(user.get("phone") or ""))
    if region:
        result.region, result.region_from = region, "the account's phone number"
        return
    settings = user.get("settings")
    inner = settings.get("settings") if isinstance(settings, dict) and isinstance(settings.get("settings"), dict) else settings
    locale = user.get("locale") or (inner.get("locale") if isinstance(inner, dict) else None)
    region = region_from_locale(str(locale)) if locale else None
    if region:
        result.region, result.region_from = region, f"the account's locale {locale}"


class DiscordPackageImporter:
    kind = "discord-package"
    description = "Official Discord data package (folder or zip): your own messages, JSON or older CSV."
    posts = True

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        result = ParseResult()
        owner = options.owner[0] if options.owner else "owner"
        owner_name = owner
        user_files = tree.find(r"(^|/)account/user\.json$")
        if user_files:
            user = load_json(tree.read_text(user_files[0]), tree.display(user_files[0]), "Account/user.json with an id")
            if isinstance(user, dict) and user.get("id") is not None:
                owner, owner_name = str(user["id"]), str(user.get("global_name") or user.get("username") or user["id"])
            if isinstance(user, dict):
                _account_region(user, result)
        index = {}
        index_files = tree.find(r"(^|/)messages/index\.json$")
        if index_files:
            loaded = load_json(tree.read_text(index_files[0]), tree.display(index_files[0]), "Messages/index.json")
            index = loaded if isinstance(loaded, dict) else {}
        if tree.is_single_file:
            name = tree.names()[0]
            if not name.lower().endswith((".json", ".csv")):
                raise ImportFormatError(f"{path}: {EXPECTED}")
            files = [(name, PurePosixPath(str(path)).parent.name or "channel")]
        else:
            files = []
            for name in tree.names():
                m = _CHANNEL_FILE.search(name)
                if m:
                    files.append((name, m.group(2)))
        if not files:
            raise ImportFormatError(f"{path}: no Messages/c<id>/messages.json|csv; expected {EXPECTED}")
        result.participants[owner] = owner_name
        for name, channel_id in files:
            conversation = f"{index.get(channel_id) or 'channel'} ({channel_id})" if index.get(channel_id) else channel_id
            self._channel(tree, name, conversation, owner, owner_name, result)
        result.owner_ids = {owner}
        return result

    def _channel(self, tree: Tree, name: str, conversation: str, owner: str, owner_name: str, result: ParseResult) -> None:
        file = tree.display(name)
        text = tree.read_text(name)
        rows: list[tuple[int, dict]] = []
        if name.lower().endswith(".json"):
            data = load_json(text, file, EXPECTED)
            if not isinstance(data, list):
                raise ImportFormatError(f"{file}: messages.json is not a list; expected {EXPECTED}")
            if data and all(isinstance(r, dict) and "Contents" not in r and "author" in r for r in data[:20]):
                raise ImportFormatError(f"{file}: this is a DiscordChatExporter export (messages have 'author'); use kind discord-exporter")
            rows = list(enumerate(data))
            where_word = "record"
        else:
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames or "Contents" not in [f.strip() for f in reader.fieldnames]:
                raise ImportFormatError(f"{file}: missing ID,Timestamp,Contents columns; expected {EXPECTED}")
            try:
                rows = [(i, {k.strip(): v for k, v in r.items() if k}) for i, r in enumerate(reader, 2)]
            except csv.Error as exc:
                result.skip(Problem(file, f"line {reader.line_num}", f"CSV error: {exc}"), "bad_csv")
            where_word = "line"
        parsed = []
        for i, row in rows:
            if not isinstance(row, dict):
                result.skip(Problem(file, f"{where_word} {i}", "record is not an object"), "bad_record")
                continue
            content = str(row.get("Contents") or "")
            attachments = str(row.get("Attachments") or "").strip()
            kind = "text"
            if not content.strip():
                if attachments:
                    content, kind = f"<media:{attachment_type(attachments.split()[0])}>", "media"
                else:
                    result.skip(Problem(file, f"{where_word} {i}", "empty message"), "empty")
                    continue
            ts = parse_time(row.get("Timestamp"))
            # Excel-mangled ids ("7.73264E+18") cannot be recovered; drop them rather than keep a wrong id.
            ext = str(row.get("ID") or "")
            parsed.append((ts, i, RawMessage(conversation, 0, ts, owner, owner_name, content, kind,
                                             external_id=ext if ext.isdigit() else None)))
        # Packages list newest first; time order with the file's own order as the tie-break (reversed).
        parsed.sort(key=lambda t: (t[0].timestamp() if t[0] else 0.0, -t[1]))
        base = sum(1 for m in result.messages if m.conversation == conversation)
        for seq, (_, _, msg) in enumerate(parsed, base):
            msg.seq = seq
            result.messages.append(msg)
