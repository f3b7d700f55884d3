"""WhatsApp chat exports (`.txt`, or the `.zip` WhatsApp produces; a folder of them also works).

Every line that starts with a date and a time starts a message; other lines continue the previous
message (counted as `merged`). Accepted headers, in any mix within one file:
  [31.12.23, 23:59:59] Name: text        (iOS, brackets, optional seconds)
  12/31/23, 11:59 PM - Name: text        (Android, '-' or '–' separator, 12 or 24 hours)
  2023/12/31, 23:59 - Name: text         (year first)
with U+200E/U+200F marks, U+202F/U+00A0 before AM/PM, localised meridiems ("a. m.", "p. m.") and a
"~ " prefix for non-contacts. Day- vs month-first is inferred per file (`_whatsapp_dates`) unless
`options.date_order` says. Headers without "Name:" are system lines; iOS also marks system lines
with a leading U+200E in the body. Media placeholders in many locales become kind 'media' with the
text `<media:TYPE>` (+ caption lines). WhatsApp has no sender ids: the display name is the id, and
the owner is the `--owner` name matched exactly.
"""
from __future__ import annotations

import re
from datetime import datetime, time
from pathlib import Path

from trainer.dataset.phones import majority_region
from trainer.importers._io import Tree, looks_binary
from trainer.importers._owner import match_owner
from trainer.importers._whatsapp_dates import infer_order, split_date, to_date
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage
from trainer.textmatch import literal_trie

EXPECTED = ("a WhatsApp chat export (.txt or .zip) with lines like "
            "'[31/12/23, 23:59:59] Name: text' or '31/12/2023, 23:59 - Name: text'")

_MARKS = "\u200e\u200f\ufeff\u202a\u202b\u202c\u2068\u2069"
_HEADER = re.compile(
    r"^(?P<open>\[)?(?P<date>\d{1,4}[./-] ?\d{1,2}[./-] ?\d{1,4})\.?,? ?"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
    r"(?:[ \u202f\u00a0]?(?P<mer>[AaPp]\.? ?[Mm]\.?|vorm\.|nachm\.|午前|午後|오전|오후))?"
    r"(?(open)\][ \u202f\u00a0]?|(?:[ \u202f\u00a0]?[-\u2013\u2014][ \u202f\u00a0]?|$))"
    r"(?P<rest>.*)$"
)
# A line that starts like a header but did not parse (e.g. "3:22_AM"): reported, not glued to a message.
_HEADERISH = re.compile(r"^\[?\d{1,4}[./-] ?\d{1,2}[./-] ?\d{1,4},? \d{1,2}[:.]\d")
_SENDER = re.compile(r"^(?P<sender>[^:\n]{1,100}?):(?: |$|(?=[^\d\s/]))(?P<body>.*)$", re.S)
# _HEADER over a whole text at once: any leading marks skipped (as the per-line form strips them), one line per match.
_HEADER_LINES = re.compile("^[" + _MARKS + "]*" + _HEADER.pattern[1:], re.M)
_MARKS_SP = _MARKS + " "
# Android's 24-hour header, "31/12/2023, 23:59 - rest", and nothing else: on such a line every part of
# _HEADER takes its first choice (no bracket, the whole digit runs, no seconds, no meridiem, " - "),
# so _HEADER reads the same date, time and rest from it (and no meridiem). Lines it misses are left
# to _HEADER.
_SIMPLE_HEADER_LINES = re.compile(r"^(\d{1,2}[./-]\d{1,2}[./-]\d{2,4}), (\d{1,2}:\d{2}) - (.*)$", re.M)


def _mostly_simple_headers(text: str) -> bool:
    """Whether most header lines near the start of a chat have the simple Android shape (a speed choice only)."""
    simple = other = 0
    for line in text[:20000].split("\n")[:200]:
        if _SIMPLE_HEADER_LINES.match(line):
            simple += 1
        elif _HEADER.match(line.lstrip(_MARKS)):
            other += 1
    return simple > 2 * other
_PM = {"p", "午後", "오후", "nachm."}
_AM = {"a", "午前", "오전", "vorm."}

_DELETED = re.compile(
    r"^(this message was deleted|you deleted this message|diese nachricht wurde gelöscht\.?|du hast diese nachricht gelöscht\.?"
    r"|se eliminó este mensaje\.?|eliminaste este mensaje\.?|ce message a été supprimé\.?|vous avez supprimé ce message\.?"
    r"|questo messaggio è stato eliminato|essa mensagem foi apagada|mensagem apagada|dit bericht is verwijderd)$", re.I)
_EDITED = re.compile(r"\s*[\u200e]?<(this message was edited|diese nachricht wurde bearbeitet\.?|se editó este mensaje\.?|mensaje editado)>$", re.I)
_SYSTEM_PHRASES = re.compile(
    r"(end-to-end encrypted|end-to-end encryption|ende-zu-ende|cifrados de extremo a extremo|chiffrés de bout en bout"
    r"|security code (with .* )?changed|sicherheitsnummer|^.{1,60} (hat die gruppe .{0,80}erstellt|created (the )?group)\.?$)", re.I)
_ATTACHED = re.compile(r"^<(?:attached|anhang|adjunto|anexo|pièce jointe|allegato|bijlage): ?(?P<file>[^>]+)>$", re.I)
_FILE_ATTACHED = re.compile(
    r"^(?P<file>.+?\.\w{2,5}) \((?:file attached|datei angehängt|archivo adjunto|fichier joint|arquivo anexado|allegato|bestand bijgevoegd)\)$", re.I)
_OMITTED_ANGLE = re.compile(
    r"^<(media omitted|medien ausgelassen|multimedia omitido|archivo omitido|médias omis|media weggelaten|media omessi|mídia oculta"
    r"|media tidak disertakan|медиафайл отсутствует|без медиафайлов)>$", re.I)
_OMITTED = re.compile(
    r"^(?P<what>[\w-]+(?: card)?) (omitted|omitida|omitido|weggelassen|ausgelassen|absente|absent|omessa|omesso|ocultad[oa]|weggelaten)$", re.I)
_TYPE_WORDS = {
    "image": "image", "photo": "image", "imagen": "image", "bild": "image", "immagine": "image", "imagem": "image", "foto": "image",
    "video": "video", "vidéo": "video", "vídeo": "video", "audio": "audio", "áudio": "audio", "sticker": "sticker",
    "gif": "gif", "document": "document", "documento": "document", "dokument": "document", "contact": "contact",
    "kontakt": "contact", "contacto": "contact",
}
_EXT_TYPES = {
    "jpg": "image", "jpeg": "image", "png": "image", "heic": "image", "webp": "sticker", "gif": "gif",
    "mp4": "video", "mov": "video", "3gp": "video", "opus": "audio", "m4a": "audio", "mp3": "audio", "ogg": "audio",
    "aac": "audio", "vcf": "contact", "pdf": "document", "doc": "document", "docx": "document", "xlsx": "document",
    "zip": "document", "txt": "document",
}


_OMIT_WORDS = {"omitted", "omitida", "omitido", "weggelassen", "ausgelassen", "absente", "absent", "omessa", "omesso",
               "ocultado", "ocultada", "weggelaten"}
_OMIT_LAST = "".join(sorted({w[-1] for w in _OMIT_WORDS} | {w[-1].upper() for w in _OMIT_WORDS}))
# Cheap substring tests decide whether the costly system-phrase regex needs to run at all.
_SYSTEM_HINT = re.compile(literal_trie({"encrypt", "ende-zu", "extremo", "bout en bout", "security code", "sicherheitsnummer",
                                         "group", "gruppe", "delet", "lösch", "elimin", "supprim", "apagad", "verwijder"}))


def media_type(body: str) -> str | None:
    """The media type a placeholder body stands for, or None when the body is ordinary text."""
    b = body.strip(_MARKS_SP)
    if not b or len(b) > 300:
        return None
    first, last = b[0], b[-1]
    m = None
    if first == "<" and last == ">":
        if _OMITTED_ANGLE.match(b):
            return "media"
        m = _ATTACHED.match(b)
    elif last == ")":
        m = _FILE_ATTACHED.match(b)
    if m:
        name = m.group("file").strip().lower()
        ext = name.rsplit(".", 1)[-1] if "." in name else ""
        for key, kind in (("photo", "image"), ("video", "video"), ("audio", "audio"), ("sticker", "sticker"), ("ptt", "audio")):
            if key in name:
                return kind
        return _EXT_TYPES.get(ext, "file")
    # `last in _OMIT_LAST`: only those characters lower-case to the last letter of an "omitted" word.
    if last in _OMIT_LAST and b.rsplit(" ", 1)[-1].lower() in _OMIT_WORDS:
        m = _OMITTED.match(b)
        if m:
            return _TYPE_WORDS.get(m.group("what").split()[0].lower(), "media")
    # Every prefix below contains ':', and lower() never shortens a text (so "live location shared" needs <= 20 chars).
    if first in "LlSsUuPpEe" and (":" in b or len(b) <= 20):
        low = b.lower()
        if low.startswith(("location: https://", "standort: https://", "ubicación: https://")) or low == "live location shared":
            return "location"
        if low.startswith(("poll:", "umfrage:", "encuesta:")):
            return "poll"
    return None


def is_system_body(body: str) -> bool:
    low = body[:200].lower()
    if _SYSTEM_HINT.search(low) is None:
        return False
    return bool(_SYSTEM_PHRASES.search(low) or (len(body) < 60 and _DELETED.match(body.strip(_MARKS_SP))))


def _conversation_name(name: str) -> str:
    stem = Path(name).stem
    for prefix in ("WhatsApp Chat with ", "WhatsApp Chat mit ", "Chat de WhatsApp con ", "Discussion WhatsApp avec ",
                   "WhatsApp Chat - ", "WhatsApp-Chat mit "):
        if stem.startswith(prefix):
            return stem[len(prefix):]
    return stem.strip("_ ") or "chat"


class WhatsAppImporter:
    kind = "whatsapp"
    description = "WhatsApp chat export: the .txt or the .zip WhatsApp produces (any locale)."

    def parse(self, path: Path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = [n for n in tree.names() if n.lower().endswith(".txt")] if not tree.is_single_file else tree.names()
        if not names:
            raise ImportFormatError(f"{path}: no .txt chat inside; expected {EXPECTED}")
        result = ParseResult()
        any_header = False
        for name in names:
            any_header |= self._parse_text(tree.read_text(name), tree.display(name), _conversation_name(name if not tree.is_single_file or str(path).lower().endswith(".txt") else name), options, result)
        if not any_header:
            raise ImportFormatError(f"{path}: no line starts with a date and time; expected {EXPECTED}")
        result.owner_ids = match_owner(result, options.owner, str(path))
        self._region_hint(result, options)
        return result

    @staticmethod
    def _region_hint(result: ParseResult, options: ImportOptions) -> None:
        """The phone region of the chat: the owner's +CC number (as --owner or as their sender name),
        else the most common +CC among participants shown by number (people who are not in the
        phone's contacts), else the locale of WhatsApp's own lines."""
        owner_numbers = [*options.owner, *(result.participants.get(o, o) for o in result.owner_ids)]
        region = majority_region(owner_numbers)
        if region:
            result.region, result.region_from = region, "the owner's number"
            return
        region = majority_region(result.participants.values())
        if region:
            result.region, result.region_from = region, "participants' numbers"

    def _parse_text(self, text: str, file: str, conversation: str, options: ImportOptions, result: ParseResult) -> bool:
        if looks_binary(text):
            return False
        # Pass 1: find headers and gather the dates so the day/month order can be inferred per separator.
        entries, conts = self._scan(text, file, result)
        if not entries:
            return False
        orders = self._date_orders(entries, options.date_order)
        # Pass 2: timestamps, senders, kinds. Chats repeat the same date and minute a lot, hence the caches.
        date_cache: dict[str, object] = {}
        time_cache: dict[tuple, time | None] = {}
        combine = datetime.combine
        senders: dict[str, str | None] = {}        # raw "sender" group -> cleaned name (None: a system line)
        participants = result.participants
        messages = result.messages
        append = messages.append
        sender_match = _SENDER.match
        hint = _SYSTEM_HINT.search
        marks, marks_sp, marks_sp_nl = _MARKS, _MARKS_SP, _MARKS + " \n"
        seq = 0
        for index, (line_no, date_str, time_str, mer, rest) in enumerate(entries):
            day = date_cache.get(date_str)
            if day is None:
                sep, fields, yf = split_date(date_str)
                try:
                    day = to_date(fields, orders[(sep, yf)])
                except ValueError:
                    day = False
                date_cache[date_str] = day
            if day is False:
                result.skip(Problem(file, f"line {line_no}", f"impossible date {date_str!r} for the file's date order"), "bad_date")
                continue
            key = (time_str, mer)
            clock = time_cache.get(key, False)
            if clock is False:
                clock = time_cache[key] = self._clock(time_str, mer)
            if clock is None:
                result.skip(Problem(file, f"line {line_no}", f"impossible time {time_str!r}"), "bad_time")
                continue
            ts = combine(day, clock)
            sm = sender_match(rest)
            if sm is None:
                sender = None
            else:
                raw, body = sm.group(1, 2)
                sender = senders.get(raw, False)
                if sender is False:
                    if '"' in raw or "\u201c" in raw:
                        sender = None
                    else:
                        sender = raw.strip().lstrip(marks)
                        if sender.startswith("~"):
                            sender = sender[1:].strip(" \u202f\u00a0")
                    senders[raw] = sender
            cont = conts.get(index) if conts else None
            if sender is None:
                sender, kind, body = "", "system", rest
                if cont:
                    body = body + "\n" + "\n".join(cont)
            else:
                kind = "text"
                if cont:
                    body = body + "\n" + "\n".join(cont)
                    head = body.split("\n", 1)[0]
                else:
                    head = body
                if body.endswith(">"):
                    body = _EDITED.sub("", body)
                    head = body.split("\n", 1)[0]
                mt = media_type(head)
                if mt is not None:
                    caption = body.split("\n", 1)[1] if "\n" in body else ""
                    body, kind = f"<media:{mt}>" + (f"\n{caption}" if caption.strip() else ""), "media"
                elif ("\u200e" in rest and rest[sm.end(1) + 1:].lstrip(" ").startswith("\u200e")) or (
                        hint(body[:200].lower()) is not None and is_system_body(body)):
                    kind = "system"
                if kind == "text":
                    body = body.lstrip(marks).rstrip()
                    if not body.strip():
                        result.skip(Problem(file, f"line {line_no}", "empty message"), "empty")
                        continue
                else:
                    body = body.strip(marks)
            if kind == "system":
                append(RawMessage(conversation, seq, ts, "system", sender or "system", body.strip(marks_sp_nl), kind))
            else:
                if sender not in participants:
                    participants[sender] = sender
                append(RawMessage(conversation, seq, ts, sender, sender, body, kind))
            seq += 1
        return True

    @staticmethod
    def _scan(text: str, file: str, result: ParseResult, fast: bool | None = None) -> tuple[list[tuple], dict[int, list[str]]]:
        """Header lines as (line_no, date, time, meridiem, rest), and the continuation lines of each
        (by index in that list). One regex pass over the whole text finds the headers: the general
        `_HEADER` one, or, when the file's headers look like Android's "31/12/2023, 23:59 - " (the
        most common export), a simpler regex for exactly that shape whose matches `_HEADER` would
        read the same way; lines between two matches are then tried against `_HEADER` one by one."""
        entries: list[tuple] = []
        conts: dict[int, list[str]] = {}
        line_no = 0
        pos = 0
        swallowing = False          # after an unparseable header: its continuation lines go nowhere
        header = _HEADER.match

        def others(lines: list[str]) -> None:
            nonlocal line_no, swallowing
            for line in lines:
                line_no += 1
                stripped = line.lstrip(_MARKS) if line[:1] in _MARKS else line
                m = header(stripped)
                if m is not None:
                    entries.append((line_no, *m.group("date", "time", "mer", "rest")))
                    swallowing = False
                    continue
                if _HEADERISH.match(stripped):
                    result.skip(Problem(file, f"line {line_no}", f"unrecognised timestamp in {stripped[:40]!r}"), "bad_timestamp")
                    swallowing = True       # swallow its continuation lines rather than gluing them elsewhere
                    continue
                if entries and not swallowing:
                    conts.setdefault(len(entries) - 1, []).append(line)
                    result.merged += 1
                elif not entries and not swallowing and line.strip():
                    result.skip(Problem(file, f"line {line_no}", "text before the first message header"), "before_first_message")

        if fast is None:
            fast = _mostly_simple_headers(text)
        if fast:
            for m in _SIMPLE_HEADER_LINES.finditer(text):
                start = m.start()
                if start > pos:
                    others(text[pos:start - 1].split("\n"))
                line_no += 1
                swallowing = False
                date_str, time_str, rest = m.groups()
                entries.append((line_no, date_str, time_str, None, rest))
                pos = m.end() + 1
        else:
            for m in _HEADER_LINES.finditer(text):
                start = m.start()
                if start > pos:
                    others(text[pos:start - 1].split("\n"))
                line_no += 1
                swallowing = False
                entries.append((line_no, *m.group("date", "time", "mer", "rest")))
                pos = m.end() + 1
        if pos <= len(text):
            tail = text[pos:].split("\n")
            while tail and not tail[-1].strip():      # trailing blank lines belong to no message
                tail.pop()
            others(tail)
        return entries, conts

    @staticmethod
    def _date_orders(entries, override: str | None) -> dict[tuple[str, bool], str]:
        # Keyed by (separator, year-first): one file can mix '2023/5/4' with '5/4/23'.
        groups: dict[tuple[str, bool], list] = {}
        seen = set()
        for e in entries:
            if e[1] in seen:
                continue
            seen.add(e[1])
            sep, fields, yf = split_date(e[1])
            groups.setdefault((sep, yf), []).append(fields)
        return {key: (override or infer_order(fields, key[1])) for key, fields in groups.items()}

    @classmethod
    def _timestamp(cls, day, time_str: str, mer: str | None) -> datetime | None:
        clock = cls._clock(time_str, mer)
        return None if clock is None else datetime.combine(day, clock)

    @staticmethod
    def _clock(time_str: str, mer: str | None) -> time | None:
        """The time of day a header's time (and meridiem) stands for; None when impossible."""
        parts = time_str.replace(".", ":").split(":")
        hour, minute = int(parts[0]), int(parts[1])
        second = int(parts[2]) if len(parts) > 2 else 0
        if mer:
            key = mer.strip().lower()[:1] if mer[0] in "AaPp" else mer
            if key in _PM and hour < 12:
                hour += 12
            elif key in _AM and hour == 12:
                hour = 0
        try:
            return time(hour, minute, second)
        except ValueError:
            return None
