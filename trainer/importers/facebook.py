"""Facebook Messenger and Instagram DM exports, and Facebook/Instagram posts and comments (the
`*-posts` kinds, at the end). Messenger/Instagram DMs: `message_N.json` files (a thread folder, the export
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


class FacebookPostsImporter:
    """Facebook posts and comments from "Download your information" (JSON): `your_posts*.json`
    (a list of `{timestamp, data: [{post}], attachments, title}`) and `comments*.json`
    (`{comments_v2: [{timestamp, data: [{comment: {comment, author}}], title}]}`).

    Every post and comment is the owner's own words, one conversation each. The export lacks the
    post a comment answers, so a comment's conversation starts with a `<media:post>` placeholder
    from that post's author (named in the title where it says so): the comment is a reply.
    """
    kind = "facebook-posts"
    description = "Facebook posts and comments (your_posts_N.json, comments.json; folder, zip or file)."
    posts = True
    expected = "Facebook your_posts_N.json ([{\"timestamp\", \"data\": [{\"post\"}]}]) or comments.json ({\"comments_v2\": [...]})"
    _FILES = r"(^|/)(your_posts[\w-]*|comments(_\d+)?)\.json$"
    _ON = re.compile(r" (?:commented on|replied to|hat .{0,20}kommentiert) (.+?)(?:'s|’s) ", re.I)

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(self._FILES)
        if not names:
            raise ImportFormatError(f"{path}: no your_posts_N.json or comments.json found; expected {self.expected}")
        result = ParseResult()
        owner = options.owner[0] if options.owner else None
        items: list[tuple[str, int, str, dict]] = []
        for name in names:
            file = tree.display(name)
            data = load_json(tree.read_text(name), file, self.expected)
            if isinstance(data, dict) and isinstance(data.get("comments_v2", data.get("comments")), list):
                items += [("comment", i, file, c) for i, c in enumerate(data.get("comments_v2", data.get("comments")))]
            elif isinstance(data, list):
                items += [("post", i, file, p) for i, p in enumerate(data)]
            else:
                raise ImportFormatError(f"{file}: neither a list of posts nor a comments_v2 list; expected {self.expected}")
        for what, i, file, item in items:
            where = f"{what} {i}"
            if not isinstance(item, dict):
                result.skip(Problem(file, where, "not an object"), "bad_record")
                continue
            text, author, media = self._content(what, item)
            owner = owner or author
            try:
                ts = datetime.fromtimestamp(int(item.get("timestamp")), tz=timezone.utc)
            except (TypeError, ValueError, OverflowError, OSError):
                ts = None
            if not text and not media:
                result.skip(Problem(file, where, "no text and no media"), "empty")
                continue
            key = f"{what} {i} ({file})"
            seq = 0
            if what == "comment":
                m = self._ON.search(" " + fix_latin1_mojibake(str(item.get("title") or "")) + " ")
                other = m.group(1) if m else "someone"
                result.participants.setdefault(other, other)
                result.messages.append(RawMessage(key, 0, ts, other, other, "<media:post>", "media"))
                seq = 1
            kind = "text" if text else "media"
            result.messages.append(RawMessage(key, seq, ts, "\0owner", "owner", text or f"<media:{media}>", kind))
        owner = owner or "owner"
        for m in result.messages:
            if m.sender_id == "\0owner":
                m.sender_id = m.sender_name = owner
        result.participants[owner] = owner
        result.owner_ids = {owner}
        return result

    @staticmethod
    def _content(what: str, item: dict) -> tuple[str, str | None, str | None]:
        text, author, media = "", None, None
        for d in item.get("data") or []:
            if not isinstance(d, dict):
                continue
            if what == "post" and d.get("post"):
                text = fix_latin1_mojibake(str(d["post"]))
            c = d.get("comment")
            if what == "comment" and isinstance(c, dict):
                text = fix_latin1_mojibake(str(c.get("comment") or ""))
                author = fix_latin1_mojibake(str(c["author"])) if c.get("author") else None
        for a in item.get("attachments") or []:
            for d in (a.get("data") or []) if isinstance(a, dict) else []:
                if isinstance(d, dict) and d.get("media"):
                    media = "image"
                elif isinstance(d, dict) and d.get("external_context") and not text:
                    text = str(d["external_context"].get("url") or "")
        return text.strip(), author, media


class InstagramPostsImporter(FacebookPostsImporter):
    """Instagram posts and comments: `posts_N.json` (a list of `{media: [{uri, title}], title,
    creation_timestamp}`; the caption is the title) and `post_comments_N.json` / `comments.json`
    (`[{string_map_data: {Comment: {value}, "Media Owner": {value}, Time: {timestamp}}}]`)."""
    kind = "instagram-posts"
    description = "Instagram posts and comments (posts_N.json, post_comments_N.json; folder, zip or file)."
    expected = "Instagram posts_N.json ([{\"media\": [...], \"title\"}]) or post_comments_N.json ([{\"string_map_data\": ...}])"
    _FILES = r"(^|/)(posts_\d+|post_comments(_\d+)?|comments)\.json$"

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(self._FILES)
        if not names:
            raise ImportFormatError(f"{path}: no posts_N.json or post_comments_N.json found; expected {self.expected}")
        result = ParseResult()
        owner = options.owner[0] if options.owner else "owner"
        result.participants[owner] = owner
        for name in names:
            file = tree.display(name)
            data = load_json(tree.read_text(name), file, self.expected)
            if isinstance(data, dict):
                data = data.get("comments_media_comments", data.get("comments"))
            if not isinstance(data, list):
                raise ImportFormatError(f"{file}: not a list of posts or comments; expected {self.expected}")
            for i, item in enumerate(data):
                if not isinstance(item, dict):
                    result.skip(Problem(file, f"record {i}", "not an object"), "bad_record")
                    continue
                key = f"record {i} ({file})"
                smd = item.get("string_map_data")
                if isinstance(smd, dict):
                    text = fix_latin1_mojibake(str((smd.get("Comment") or {}).get("value") or "")).strip()
                    other = fix_latin1_mojibake(str((smd.get("Media Owner") or {}).get("value") or "someone"))
                    ts = self._time((smd.get("Time") or {}).get("timestamp"))
                    if not text:
                        result.skip(Problem(file, f"record {i}", "empty comment"), "empty")
                        continue
                    result.participants.setdefault(other, other)
                    result.messages.append(RawMessage(key, 0, ts, other, other, "<media:post>", "media"))
                    result.messages.append(RawMessage(key, 1, ts, owner, owner, text, "text"))
                    continue
                media = item.get("media") if isinstance(item.get("media"), list) else []
                first = media[0] if media and isinstance(media[0], dict) else {}
                text = fix_latin1_mojibake(str(item.get("title") or first.get("title") or "")).strip()
                ts = self._time(item.get("creation_timestamp") or first.get("creation_timestamp"))
                if not text and not media:
                    result.skip(Problem(file, f"record {i}", "no caption and no media"), "empty")
                    continue
                result.messages.append(RawMessage(key, 0, ts, owner, owner, text or "<media:image>", "text" if text else "media"))
        result.owner_ids = {owner}
        return result

    @staticmethod
    def _time(value) -> datetime | None:
        try:
            return datetime.fromtimestamp(int(value), tz=timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            return None
