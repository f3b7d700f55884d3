"""Telegram Desktop exports (`result.json`), both shapes: one chat `{name, type, id, messages}` and the
full export `{personal_information?, chats: {list: [...]}}`.

`text` may be a string or a list mixing strings and entity objects `{type, text}`; both flatten to
the visible text. Service messages (`type: "service"`) become kind 'system'. Photos, stickers,
voice notes and files become kind 'media' (`<media:TYPE>` plus any caption); forwarded messages are
someone else's words, so they become `<media:forwarded>` placeholders. Senders are identified by
`from_id` ("user123"); the owner is `--owner` (id with or without the "user" prefix, or exact name),
else the exporting account from `personal_information.user_id`. The account's `phone_number` gives
the phone region for PII scrubbing.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from trainer.dataset.phones import region_from_number
from trainer.importers._io import Tree, load_json, repair_mojibake
from trainer.importers._owner import match_owner
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

EXPECTED = "a Telegram Desktop export result.json ({\"messages\": [...]} or {\"chats\": {\"list\": [...]}})"
_MEDIA = {"sticker": "sticker", "voice_message": "audio", "audio_file": "audio", "video_file": "video",
          "video_message": "video", "animation": "gif"}


def flatten_text(value) -> str:
    """Visible text of a Telegram `text` field (string or list of strings/entities)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else "" for p in value)
    return ""


def _timestamp(msg: dict) -> datetime | None:
    unix = msg.get("date_unixtime")
    if unix is not None:
        try:
            return datetime.fromtimestamp(int(unix), tz=timezone.utc)
        except (ValueError, OverflowError, OSError, TypeError):
            pass
    try:
        return datetime.fromisoformat(str(msg["date"]))
    except (KeyError, ValueError, TypeError):
        return None


def _id_forms(pid: str) -> tuple[str, ...]:
    for prefix in ("user", "channel", "chat"):
        if pid.startswith(prefix) and pid[len(prefix):].isdigit():
            return (pid[len(prefix):],)
    return ()


class TelegramImporter:
    kind = "telegram"
    description = "Telegram Desktop export: result.json (one chat or the full export)."

    def parse(self, path: Path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        name = tree.names()[0] if tree.is_single_file else next(iter(tree.find(r"(^|/)result\.json$")), None)
        if name is None:
            raise ImportFormatError(f"{path}: no result.json found; expected {EXPECTED}")
        file = tree.display(name)
        data = load_json(tree.read_text(name), file, EXPECTED)
        default_owner = None
        account_region = None           # from the account's phone number (full exports only)
        if isinstance(data, dict) and isinstance(data.get("chats"), dict):
            chats = data["chats"].get("list")
            info = data.get("personal_information")
            if isinstance(info, dict) and info.get("user_id") is not None:
                default_owner = f"user{info['user_id']}"
            if isinstance(info, dict):
                region = region_from_number(str(info.get("phone_number") or ""))
                if region:
                    account_region = region
        elif isinstance(data, dict) and "messages" in data:
            chats = [data]
        else:
            raise ImportFormatError(f"{file}: {EXPECTED}")
        if not isinstance(chats, list):
            raise ImportFormatError(f"{file}: 'chats.list' is not a list; expected {EXPECTED}")
        result = ParseResult()
        for c_index, chat in enumerate(chats):
            if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
                result.skip(Problem(file, f"chat {c_index}", "not a chat object with a messages list"), "bad_chat")
                continue
            title = repair_mojibake(str(chat.get("name") or "")) or "chat"
            conversation = f"{title} ({chat['id']})" if chat.get("id") is not None else f"{title} #{c_index}"
            self._chat(chat["messages"], conversation, file, result)
        owners = match_owner(result, options.owner, file, id_forms=_id_forms)
        if not options.owner and default_owner:
            owners = {default_owner}
        result.owner_ids = owners
        if account_region:
            result.region, result.region_from = account_region, "the account's phone number"
        return result

    @staticmethod
    def _chat(messages: list, conversation: str, file: str, result: ParseResult) -> None:
        seq = 0
        for i, msg in enumerate(messages):
            where = f"{conversation} message {msg.get('id', i) if isinstance(msg, dict) else i}"
            if not isinstance(msg, dict):
                result.skip(Problem(file, where, "record is not an object"), "bad_record")
                continue
            service = msg.get("type") == "service"
            # Minimal exports have no from_id: the display name is then the only id there is.
            sender = msg.get("actor_id" if service else "from_id") or msg.get("from_id") or msg.get("from")
            if sender is None:
                if service:
                    sender = "system"
                else:
                    result.skip(Problem(file, where, "no from_id or from"), "no_sender")
                    continue
            sender = str(sender)
            sender_name = repair_mojibake(str(msg.get("actor" if service else "from") or sender))
            text = flatten_text(msg.get("text", ""))
            kind = "text"
            if service:
                kind = "system"
                text = text or str(msg.get("action", "service"))
            elif msg.get("forwarded_from") is not None:
                kind, text = "media", "<media:forwarded>"
            else:
                media = None
                if "photo" in msg:
                    media = "image"
                elif msg.get("media_type") or "file" in msg:
                    media = _MEDIA.get(str(msg.get("media_type")), "file")
                if media:
                    kind = "media"
                    text = f"<media:{media}>" + (f"\n{text}" if text.strip() else "")
                elif not text.strip():
                    result.skip(Problem(file, where, "empty message"), "empty")
                    continue
            if kind != "system" and sender not in result.participants:
                result.participants[sender] = sender_name
            reply = msg.get("reply_to_message_id")
            result.messages.append(RawMessage(
                conversation, seq, _timestamp(msg), sender if kind != "system" else "system", sender_name, text, kind,
                reply_to=str(reply) if reply is not None else None,
                external_id=str(msg["id"]) if msg.get("id") is not None else None,
            ))
            seq += 1
