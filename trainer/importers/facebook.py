"""Facebook Messenger and Instagram DM exports: `message_N.json` files (a thread folder, the export
folder, a zip, or one file), shape `{participants: [{name}], messages: [...], title, thread_path}`.

Files list messages newest first, and message_1 is the newest file: everything is put in time
order. Strings are UTF-8 bytes written as latin-1 code points ("Ã©"), repaired exactly. Photos,
videos, audio, GIFs and stickers become kind 'media'; shares become kind 'link'; calls,
unsent messages and reactions notices become kind 'system'. There are no sender ids: the display
name is the id, and the owner is `--owner` matched exactly.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from trainer.importers._io import Tree, fix_latin1_mojibake, load_json
from trainer.importers._owner import match_owner
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

_MEDIA_KEYS = (("photos", "image"), ("videos", "video"), ("audio_files", "audio"), ("gifs", "gif"), ("sticker", "sticker"), ("files", "file"))
_AUTO_SYSTEM = re.compile(r"^(.{1,80} (reacted|hat mit) .{1,8} (to|auf) (your|deine|a) message|.{1,80} (sent|shared) an attachment\.|you are now connected on messenger\.?)$", re.I)


class FacebookImporter:
    kind = "facebook"
    description = "Facebook Messenger export: message_N.json (thread folder, export folder, zip or file)."
    expected = "a Facebook Messenger message_N.json export ({\"participants\": [...], \"messages\": [...]})"

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(r"(^|/)message_\d+\.json$")
        if not names:
            raise ImportFormatError(f"{path}: no message_N.json found; expected {self.expected}")
        result = ParseResult()
        threads: dict[str, list] = {}
        for name in names:
            file = tree.display(name)
            data = load_json(tree.read_text(name), file, self.expected)
            if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
                raise ImportFormatError(f"{file}: no messages list; expected {self.expected}")
            key = fix_latin1_mojibake(str(data.get("thread_path") or data.get("title") or name.rsplit("/", 1)[0] or "thread"))
            for p in data.get("participants") or []:
                if isinstance(p, dict) and p.get("name"):
                    n = fix_latin1_mojibake(str(p["name"]))
                    result.participants.setdefault(n, n)
            m = re.search(r"message_(\d+)\.json$", name)
            file_no = int(m.group(1)) if m else 1
            for i, msg in enumerate(data["messages"]):
                threads.setdefault(key, []).append((file_no, i, file, msg))
        for key, items in threads.items():
            self._thread(key, items, result)
        result.owner_ids = match_owner(result, options.owner, str(path))
        return result

    @staticmethod
    def _thread(key: str, items: list, result: ParseResult) -> None:
        parsed = []
        for file_no, i, file, msg in items:
            where = f"message {i}"
            if not isinstance(msg, dict) or not msg.get("sender_name"):
                result.skip(Problem(file, where, "not a message with a sender_name"), "bad_record")
                continue
            try:
                ms = int(msg.get("timestamp_ms"))
                ts = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
            except (TypeError, ValueError, OverflowError, OSError):
                result.skip(Problem(file, where, "missing or invalid timestamp_ms"), "bad_timestamp")
                continue
            sender = fix_latin1_mojibake(str(msg["sender_name"]))
            text = fix_latin1_mojibake(str(msg.get("content") or ""))
            kind = "text"
            if msg.get("is_unsent") or str(msg.get("type", "")).lower() in ("call", "subscribe", "unsubscribe") or _AUTO_SYSTEM.match(text):
                kind = "system"
            elif msg.get("share"):
                kind, text = "link", text or str((msg["share"] or {}).get("link", "<link>"))
            else:
                media = next((label for k, label in _MEDIA_KEYS if msg.get(k)), None)
                if media and (not text or text.lower().startswith(("you sent", sender.lower()))):
                    kind, text = "media", f"<media:{media}>"
                elif not text.strip():
                    result.skip(Problem(file, where, "empty message"), "empty")
                    continue
            result.participants.setdefault(sender, sender)
            # Sort key: time, then older file first (higher N), then later position in file (files are newest-first).
            parsed.append(((ms, -file_no, -i), RawMessage(key, 0, ts, sender if kind != "system" else "system", sender, text, kind)))
        parsed.sort(key=lambda t: t[0])
        base = sum(1 for m in result.messages if m.conversation == key)
        for seq, (_, msg) in enumerate(parsed, base):
            msg.seq = seq
            result.messages.append(msg)


class InstagramImporter(FacebookImporter):
    kind = "instagram"
    description = "Instagram DM export: message_N.json (thread folder, export folder, zip or file)."
    expected = "an Instagram message_N.json export ({\"participants\": [...], \"messages\": [...]})"
