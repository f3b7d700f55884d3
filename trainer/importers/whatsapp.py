"""WhatsApp chat exports (`.txt`, or the `.zip` WhatsApp produces; a folder of them also works).

Every line that starts with a date and a time starts a message; other lines continue the previous
message (counted as `merged`). Accepted headers, in any mix within one file:
  [31.12.23, 23:59:59] Name: text        (iOS, brackets, optional seconds)
  12/31/23, 11:59 PM - Name: text        (Android, '-' or '–' separator, 12 or 24 hours)
  2023/12/31, 23:59 - Name: text         (year first)
  2023. 12. 31. 오후 11:59 - Name: text  (Korean; Japanese "午後11:59" and Chinese "下午11:59" likewise:
                                          the meridiem before the time)
  ٣١‏/١٢‏/٢٠٢٣، ١١:٥٩ م - Name: text     (Arabic-Indic digits, read as 0-9 throughout the file)
with U+200E/U+200F marks, U+202F/U+00A0 before AM/PM, localised meridiems ("a. m.", "p. m.") and a
"~ " prefix for non-contacts. Day- vs month-first is inferred per file (`_whatsapp_dates`) unless
`options.date_order` says.

WhatsApp's own lines never pass as what a member wrote. Headers without "Name:" (or whose "name"
holds a quoted group subject) are kind 'system'; iOS also marks system lines with a leading U+200E
in the body. Message bodies are looked up in the table of WhatsApp's strings for 17 app languages
(`_whatsapp_strings`): media placeholders ("<Media omitted>", "‎image omitted", "IMG-….jpg (file
attached)", locations, live locations, contact cards, polls) become kind 'media' with the text
`<media:TYPE>` plus any caption the member wrote; deleted messages, missed calls, "null" and
service lines become kind 'system'; the "<This message was edited>" suffix is removed. The
language of those lines (and of the meridiem words) is also the chat's locale: with participants'
or the owner's "+CC" numbers it gives the phone region for PII scrubbing (`ParseResult.region`).
WhatsApp has no sender ids: the display name is the id, and the owner is the `--owner` name matched
exactly.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, time
from functools import partial
from pathlib import Path

from trainer.dataset.phones import majority_region, region_from_language
from trainer.importers._io import Tree, looks_binary
from trainer.importers._owner import match_owner
from trainer.importers._whatsapp_dates import infer_order, split_date, to_date
from trainer.importers._whatsapp_strings import STRINGS, compile_tables, fold_body, template_regex
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

EXPECTED = ("a WhatsApp chat export (.txt or .zip) with lines like "
            "'[31/12/23, 23:59:59] Name: text' or '31/12/2023, 23:59 - Name: text'")

_MARKS = "\u200e\u200f\ufeff\u202a\u202b\u202c\u2068\u2069"
_MERIDIEM_BEFORE = "오전|오후|午前|午後|上午|下午|中午|晚上|凌晨|早上"
_HEADER = re.compile(
    r"^(?P<open>\[)?(?P<date>\d{1,4}[\u200e\u200f]?[./-] ?\d{1,2}[\u200e\u200f]?[./-] ?\d{1,4})\.?[,\u060c]? ?(?:à )?"
    r"(?:(?P<mer0>" + _MERIDIEM_BEFORE + r") ?)?"          # Korean, Japanese, Chinese: "오후 9:05", "下午9:05"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)"
    r"(?:[ \u202f\u00a0]?(?P<mer>[AaPp]\.? ?[Mm]\.?|vorm\.|nachm\.|午前|午後|오전|오후|\u0635|\u0645))?"
    r"(?(open)\][ \u202f\u00a0]?|(?:[ \u202f\u00a0]?[-\u2013\u2014][ \u202f\u00a0]?|$))"
    r"(?P<rest>.*)$"
)
# A line that starts like a header but did not parse (e.g. "3:22_AM"): reported, not glued to a message.
_HEADERISH = re.compile(r"^\[?\d{1,4}[./-] ?\d{1,2}[./-] ?\d{1,4}\.?[,\u060c]? (?:" + _MERIDIEM_BEFORE + r")? ?\d{1,2}[:.]\d")
# Arabic-Indic and Extended Arabic-Indic (Persian, Urdu) digits, as Arabic-locale exports write dates and times.
_EASTERN_DIGITS = re.compile("[\u0660-\u0669\u06f0-\u06f9]")
_TO_ASCII_DIGITS = str.maketrans({**{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06f0 + i): str(i) for i in range(10)}})
# A "sender" with a quotation mark is a service line's quoted group subject cut at its ':'.
_QUOTES = frozenset('"\u201c\u201d\u201e\u00ab\u00bb\u300c\u300d\u300e\u300f\u2039\u203a')
_SENDER = re.compile(r"^(?P<sender>[^:\n]{1,100}?):(?: |$|(?=[^\d\s/]))(?P<body>.*)$", re.S)
# _HEADER over a whole text at once: any leading marks skipped (as the per-line form strips them), one line per match.
_HEADER_LINES = re.compile("^[" + _MARKS + "]*" + _HEADER.pattern[1:], re.M)
_MARKS_SP = _MARKS + " "
# Android's 24-hour header, "31/12/2023, 23:59 - rest", and nothing else: on such a line every part of
# _HEADER takes its first choice (no bracket, the whole digit runs, no seconds, no meridiem, " - "),
# so _HEADER reads the same date, time and rest from it (and no meridiem). Lines it misses are left
# to _HEADER.
_SIMPLE_HEADER_LINES = re.compile(r"^(\d{1,2}[./-]\d{1,2}[./-]\d{2,4}), (\d{1,2}:\d{2}) - (.*)$", re.M)
# The same, with `_SENDER` applied to the rest in the same pass: an optional group that is tried
# first and exactly as `_SENDER.match(rest)` tries it, so it reads the same sender and body (no
# sender: the group is skipped and the body is the whole rest).
_SIMPLE_HEADER_SENDER_LINES = re.compile(
    r"^(\d{1,2}[./-]\d{1,2}[./-]\d{2,4}), (\d{1,2}:\d{2}) - ((?:([^:\n]{1,100}?):(?: |$|(?=[^\d\s/])))?(.*))$", re.M)


def _entry(line_no: int, date: str, clock: str, mer: str | None, rest: str) -> tuple:
    """A header line as `WhatsAppImporter._scan` lists it (see there)."""
    m = _SENDER.match(rest)
    return (line_no, date, clock, mer, rest, *(m.group(1, 2) if m is not None else (None, None)))


def _mostly_simple_headers(text: str) -> bool:
    """Whether most header lines near the start of a chat have the simple Android shape (a speed choice only)."""
    simple = other = 0
    for line in text[:20000].split("\n")[:200]:
        if _SIMPLE_HEADER_LINES.match(line):
            simple += 1
        elif _HEADER.match(line.lstrip(_MARKS)):
            other += 1
    return simple > 2 * other
_PM = {"p", "午後", "오후", "nachm.", "下午", "晚上", "中午", "م"}
_AM = {"a", "午前", "오전", "vorm.", "上午", "凌晨", "早上", "ص"}
# The language a meridiem word belongs to: part of the chat's locale, hence of its phone region.
_MERIDIEM_LANGUAGES = {"午後": "ja", "午前": "ja", "오후": "ko", "오전": "ko", "nachm.": "de", "vorm.": "de",
                       "下午": "zh", "上午": "zh", "晚上": "zh", "中午": "zh", "凌晨": "zh", "早上": "zh", "م": "ar", "ص": "ar"}

_TABLES = compile_tables()
_MAX_EXACT = max(len(k) for k in _TABLES.exact) + 8      # longer bodies are never one of WhatsApp's fixed lines
# iOS: "<attached: 00000012-PHOTO-2023-05-01.jpg>" (localised label).
_ATTACHED = re.compile(r"^<(?:attached|anhang|angehängt|adjunto|anexo|pièce jointe|allegato|bijlage|ek|вложение|załącznik|lampiran): ?(?P<file>[^>]+)>$", re.I)
_EXT_TYPES = {
    "jpg": "image", "jpeg": "image", "png": "image", "heic": "image", "webp": "sticker", "gif": "gif",
    "mp4": "video", "mov": "video", "3gp": "video", "opus": "audio", "m4a": "audio", "mp3": "audio", "ogg": "audio",
    "aac": "audio", "vcf": "contact", "pdf": "document", "doc": "document", "docx": "document", "xlsx": "document",
    "zip": "document", "txt": "document",
}
_FILE_NAME = re.compile(r"^[^\n]{1,200}\.(?:pdf|docx?|xlsx?|pptx?|txt|tex|zip|rar|7z|csv|odt|ods|odp|rtf|epub|apk|vcf|jpe?g|png|heic|webp|gif|mp4|mov|3gp|mp3|m4a|opus|ogg|aac)$", re.I)
_POLL_LABELS = {s for table in STRINGS.values() for s in table["poll"]}
# Only in a message body, the distinctive service templates (end-to-end notice, "… created group …",
# security code…) count: short ones such as "{} left" would also match what people write.
_BODY_TEMPLATES = [t for table in STRINGS.values() for t in table["system"]
                   if len(t.replace("{}", "").strip().encode()) >= 16 and not (t.startswith("{}") and t.endswith("{}"))]
# Cheap tests decide which templates a body could be at all: a template that starts with literal
# text fixes the body's first characters, one that ends with literal text its last ones.
def _grouped(key) -> dict[str, re.Pattern]:
    groups: dict[str, list[str]] = {}
    for t in _BODY_TEMPLATES:
        k = key(t)
        if k:
            groups.setdefault(k, []).append(template_regex(t))
    return {k: re.compile("^(?:" + "|".join(v) + ")$", re.S) for k, v in groups.items()}


_BY_HEAD = _grouped(lambda t: "" if t.startswith("{}") else fold_body(t)[:5])
_BY_TAIL = _grouped(lambda t: "" if t.endswith("{}") else fold_body(t)[-5:])


def _file_type(name: str) -> str:
    name = name.strip().lower()
    for key, kind in (("photo", "image"), ("video", "video"), ("audio", "audio"), ("sticker", "sticker"), ("ptt", "audio")):
        if key in name:
            return kind
    return _EXT_TYPES.get(name.rsplit(".", 1)[-1] if "." in name else "", "file")


def classify_body(body: str) -> tuple[str, str, str] | None:
    """(kind, detail, language) when a message body is one of WhatsApp's own lines
    (`trainer.importers._whatsapp_strings`): kind 'media' with the media type as detail, or
    'system' (deleted message, missed call, "null", a service line). None for what a person wrote."""
    b = body.strip(_MARKS_SP)
    n = len(b)
    if not n or n > 300:
        return None
    first, last = b[0], b[-1]
    ascii_only = b.isascii()
    if ascii_only:
        # `fold_body` for an ASCII body already stripped of marks and spaces (most bodies), inline.
        low = b.lower()
        if first == "<" and last == ">":
            low = low[1:-1].strip()
        low = low.rstrip(".").rstrip()
    else:
        low = fold_body(b)
    if n <= _MAX_EXACT:
        hit = _TABLES.exact.get(low)
        if hit is not None:
            return hit
    if first == "<" and last == ">":
        m = _ATTACHED.match(b)
        if m:
            return "media", _file_type(m.group("file")), ""
    elif last in ")\uff09":
        m = _TABLES.attached.match(b)
        if m:
            return "media", _file_type(m.group("file")), ""
    colon = b.find(":")
    if colon < 0 and not ascii_only:
        colon = b.find("\uff1a")
    if 0 < colon <= 24:
        label = b[:colon].strip(_MARKS_SP)
        found = _TABLES.prefix_kinds.get(fold_body(label))
        if found is not None:
            detail, language = found
            rest = b[colon + 1:].strip()
            if detail == "location" and rest.lower().startswith(("http://", "https://")):
                return "media", "location", language
            # WhatsApp writes "POLL:" alone on its line, the question and "OPTION: …" lines below.
            if detail == "poll" and label in _POLL_LABELS and not rest:
                return "media", "poll", language
    if n >= 16 and ((rx := _BY_HEAD.get(low[:5])) is not None and rx.match(low)
                    or (rx := _BY_TAIL.get(low[-5:])) is not None and rx.match(low)):
        return "system", "service", ""
    return None


def system_language(line: str) -> str | None:
    """The language of a service line ("Anna hat die Gruppe verlassen" -> 'de'); None when the line
    is none of the table's service templates."""
    m = _TABLES.system.match(fold_body(line))
    return None if m is None else _TABLES.system_languages[int(m.lastgroup[1:])]


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
        languages: Counter = Counter()      # of WhatsApp's own lines: the app's language, a hint of the phone region
        for name in names:
            any_header |= self._parse_text(tree.read_text(name), tree.display(name), _conversation_name(name if not tree.is_single_file or str(path).lower().endswith(".txt") else name), options, result, languages)
        if not any_header:
            raise ImportFormatError(f"{path}: no line starts with a date and time; expected {EXPECTED}")
        result.owner_ids = match_owner(result, options.owner, str(path))
        self._region_hint(result, options, languages)
        return result

    @staticmethod
    def _region_hint(result: ParseResult, options: ImportOptions, languages: Counter) -> None:
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
            return
        for language, _n in languages.most_common():
            region = region_from_language(language)
            if region:
                result.region, result.region_from = region, f"WhatsApp's language ({language})"
                return

    def _parse_text(self, text: str, file: str, conversation: str, options: ImportOptions, result: ParseResult,
                    languages: Counter) -> bool:
        if looks_binary(text):
            return False
        if _EASTERN_DIGITS.search(text):
            text = text.translate(_TO_ASCII_DIGITS)
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
        classify = classify_body
        edited = partial(_TABLES.edited.sub, "")
        marks, marks_sp, marks_sp_nl = _MARKS, _MARKS_SP, _MARKS + " \n"
        seq = 0
        service_lines = 0
        for mer in {e[3] for e in entries[:500]} & _MERIDIEM_LANGUAGES.keys():
            languages[_MERIDIEM_LANGUAGES[mer]] += 1
        for index, (line_no, date_str, time_str, mer, rest, raw, body) in enumerate(entries):
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
            if raw is None:
                sender = None
            else:
                sender = senders.get(raw, False)
                if sender is False:
                    if not _QUOTES.isdisjoint(raw) or ("'" in raw or " " in raw) and system_language(rest):
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
                if service_lines < 50:          # enough to tell the chat's language
                    service_lines += 1
                    language = system_language(body)
                    if language:
                        languages[language] += 1
            else:
                kind = "text"
                if cont:
                    body = body + "\n" + "\n".join(cont)
                    head = body.split("\n", 1)[0]
                else:
                    head = body
                if body.endswith(">"):
                    body = edited(body)
                    head = body.split("\n", 1)[0]
                hit = classify(head)
                if hit is not None:
                    what, detail, language = hit
                    if language:
                        languages[language] += 1
                    if what == "media":
                        # A poll's question and options are WhatsApp's layout, not a caption.
                        caption = body.split("\n", 1)[1] if "\n" in body and detail != "poll" else ""
                        if _FILE_NAME.match(caption):
                            caption = ""        # Android writes a left-out document's name under the placeholder
                        body, kind = f"<media:{detail}>" + (f"\n{caption}" if caption.strip() else ""), "media"
                    else:
                        kind = "system"
                elif "\u200e" in rest and rest[len(raw) + 1:].lstrip(" ").startswith("\u200e"):
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
        """Header lines as (line_no, date, time, meridiem, rest, sender, body), sender and body as
        `_SENDER` reads them from the rest (None, None where it finds no sender), and the
        continuation lines of each (by index in that list). One regex pass over the whole text finds
        the headers: the general `_HEADER` one, or, when the file's headers look like Android's
        "31/12/2023, 23:59 - " (the most common export), a simpler regex for exactly that shape whose
        matches `_HEADER` would read the same way, sender and body included; lines between two
        matches are then tried against `_HEADER` one by one."""
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
                    entries.append(_entry(line_no, m["date"], m["time"], m["mer"] or m["mer0"], m["rest"]))
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
            for m in _SIMPLE_HEADER_SENDER_LINES.finditer(text):
                start = m.start()
                if start > pos:
                    others(text[pos:start - 1].split("\n"))
                line_no += 1
                swallowing = False
                date_str, time_str, rest, raw, body = m.groups()
                entries.append((line_no, date_str, time_str, None, rest, raw, body if raw is not None else None))
                pos = m.end() + 1
        else:
            for m in _HEADER_LINES.finditer(text):
                start = m.start()
                if start > pos:
                    others(text[pos:start - 1].split("\n"))
                line_no += 1
                swallowing = False
                entries.append(_entry(line_no, m["date"], m["time"], m["mer"] or m["mer0"], m["rest"]))
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
