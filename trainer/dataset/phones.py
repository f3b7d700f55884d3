"""Phone numbers in chat text, found with libphonenumber (the `phonenumbers` package), and region hints.

`find_phones(text, region)` returns the (start, end) spans of the phone numbers in `text`:
- `phonenumbers.PhoneNumberMatcher` with leniency VALID finds numbers in international form
  ("+44 20 7946 0018", "0044 …" with the region's exit code) and, given a region, in that region's
  national forms ("020 7946 0018", "(415) 555-0132", "030 901820"). VALID means the number fits the
  region's numbering plan, which is what keeps dates, times, prices, order numbers and version
  strings out.
- A number written with "+" or "00" and 7-15 digits is redacted even when libphonenumber calls it
  invalid (an unassigned or fictional range is still someone's number to a privacy reviewer).
- National forms are also caught by shape, with or without a region (a chat in one region still
  holds numbers written in another's national form): "(415) 555-0132", "415-555-0132" and
  "0" + area code + subscriber number ("030 901820", "020 7946 0018").
- A digit run that none of the above took is tried as a national number of each of OTHER_REGIONS,
  grouped exactly as that region writes its numbers: an export with no region hint (a Spanish chat
  could be from Spain or Mexico) or a friend's number from another country is still caught.
- A cheap pre-filter comes first: only text with a run of at least 7 digits (with short separators
  between them) reaches the matcher, so ordinary chat lines cost one regex search.

Region hints: `region_from_number(text)` (the region of an international number, e.g. a WhatsApp
participant shown as "+49 …"), `region_from_locale("de-AT")` / `region_from_language("tr")`, and
`majority_region(numbers)`. Regions are ISO 3166-1 alpha-2 codes as libphonenumber uses them.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

# At least 7 digits, at most 3 separator characters between consecutive digits.
_CANDIDATE = re.compile(r"\d(?:[ \u00a0\u202f\-./()]{0,3}\d){6}")
_SEP = r"[ \u00a0\u202f\-./]"
_INTERNATIONAL = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,3}" + _SEP + r"?(?:\(\d{1,4}\)" + _SEP + r"?)?(?:\d" + _SEP + r"?){5,13}\d(?!\w)")
_NATIONAL = re.compile(
    r"(?<![\w(])\(\d{3}\)[ \u00a0]?\d{3}[ \u00a0.-]\d{4}(?!\w)"
    r"|(?<![\w.-])\d{3}[.-]\d{3}[.-]\d{4}(?![\w.-])"
    r"|(?<![\w.])0\d{2,4}[ \u00a0/-]?\d{3,4}[ \u00a0-]?\d{3,5}(?![\w.])"
    r"|(?<![\w.])0\d{2,4}[ \u00a0/-]?\d{5,8}(?![\w.])")

# The regions whose national forms are tried on digit runs that nothing else took: the largest
# populations of chat-app users and every region of the phone test corpus.
OTHER_REGIONS = ("US", "GB", "IN", "DE", "FR", "ES", "IT", "BR", "MX", "ID", "TR", "RU", "NL", "PL", "PT", "JP",
                 "KR", "CN", "SA", "AU", "AR", "CO", "NG", "PK", "PH", "EG")

# A maximal run of 7+ digits with short separators (the pre-filter's shape, not cut at 7 digits).
_RUN = re.compile(r"\d(?:[ \u00a0\u202f\-./()]{0,3}\d){6,}")

# Shapes libphonenumber can take for a number but that are a date ("06.07.2030", "2024-03-12").
_DATE = re.compile(r"(?:0?[1-9]|[12]\d|3[01])([./-])(?:0?[1-9]|1[0-2])\1(?:\d{2}|\d{4})"
                   r"|(?:0?[1-9]|1[0-2])([./-])(?:0?[1-9]|[12]\d|3[01])\2(?:\d{2}|\d{4})"
                   r"|\d{4}([./-])(?:0?[1-9]|1[0-2])\3(?:0?[1-9]|[12]\d|3[01])")

# Dotted digits with a one-digit group after the first: a version or build number ("3.2.29369.801").
_VERSION = re.compile(r"\d+(?:\.\d+)*\.\d\.\d+(?:\.\d+)*")

# The region a language's exports most likely come from, when nothing better is known. Only
# languages spoken mainly in one numbering plan are listed (English and Spanish are not).
LANGUAGE_REGIONS = {
    "de": "DE", "fr": "FR", "it": "IT", "pt-BR": "BR", "pt-PT": "PT", "nl": "NL", "tr": "TR", "ru": "RU", "pl": "PL",
    "id": "ID", "hi": "IN", "ja": "JP", "ko": "KR", "zh": "CN", "sv": "SE", "da": "DK", "nb": "NO", "fi": "FI", "cs": "CZ",
    "el": "GR", "hu": "HU", "ro": "RO", "uk": "UA", "vi": "VN", "th": "TH", "he": "IL", "ms": "MY", "fa": "IR",
}


def is_region(code: str | None) -> bool:
    return bool(code) and code.upper() in phonenumbers.SUPPORTED_REGIONS


def normalise_region(code: str | None) -> str | None:
    """'gb' -> 'GB'; None for None; ValueError naming the problem for anything libphonenumber does not know."""
    if code is None or code == "":
        return None
    if not is_region(code):
        raise ValueError(f"{code!r} is not a region libphonenumber knows (expected a two-letter country code such as GB, DE, US)")
    return code.upper()


def region_from_number(text: str | None) -> str | None:
    """The region of a phone number written in international form ("+49 151 …"), else None."""
    if not text:
        return None
    t = text.strip().lstrip("\u200e\u200f\u202a\u202c~ ")
    if not t.startswith("+") or sum(c.isdigit() for c in t) < 7:
        return None
    try:
        number = phonenumbers.parse(t, None)
    except phonenumbers.NumberParseException:
        return None
    # The country code's main region: +44 is GB (not Guernsey), +1 the US: one numbering plan each.
    region = phonenumbers.region_code_for_country_code(number.country_code)
    return region if is_region(region) else None


def majority_region(numbers) -> str | None:
    """The most common region among international numbers (participants shown by number), else None."""
    counts = Counter(r for r in map(region_from_number, numbers) if r)
    return counts.most_common(1)[0][0] if counts else None


def region_from_locale(locale: str | None) -> str | None:
    """'en-GB', 'de_AT', 'pt-BR' -> the country part; a bare language ('tr') -> LANGUAGE_REGIONS."""
    if not locale:
        return None
    parts = re.split(r"[-_]", locale.strip())
    if len(parts) > 1 and is_region(parts[-1]):
        return parts[-1].upper()
    return region_from_language(parts[0])


def region_from_language(language: str | None) -> str | None:
    if not language:
        return None
    return LANGUAGE_REGIONS.get(language) or LANGUAGE_REGIONS.get(language.split("-")[0].lower())


def has_candidate(text: str) -> bool:
    """The pre-filter: whether `text` has a run of 7+ digits that could be a phone number."""
    return _CANDIDATE.search(text) is not None


def find_phones(text: str, region: str | None = None) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) spans of phone numbers in `text` (see the module docstring)."""
    if _CANDIDATE.search(text) is None:
        return []
    spans = [(m.start, m.end) for m in PhoneNumberMatcher(text, region or "ZZ", leniency=Leniency.VALID)
             if _plausible(text, m.start, m.end)]
    # The common national shapes apply with a region too: a hint adds that region's own forms, it
    # does not excuse another region's ("020 7946 0958" from a London friend in a German chat).
    extra = [m.span() for m in _INTERNATIONAL.finditer(text)] + [m.span() for m in _NATIONAL.finditer(text)]
    if extra:
        spans = _merge(spans + extra)
    other = _other_regions(text, spans, region)
    return _merge(spans + other) if other else spans


def _other_regions(text: str, spans: list[tuple[int, int]], region: str | None) -> list[tuple[int, int]]:
    """Numbers in another region's national form: a chat holds its friends' numbers too, and many
    exports give no region at all. Tried only when a digit run is left that nothing above took, and
    with EXACT_GROUPING: the digits must be grouped as that region writes its numbers, which keeps
    dates with times, long codes and amounts out."""
    runs = [m.group() for m in _RUN.finditer(text) if not any(m.start() < end and start < m.end() for start, end in spans)]
    out = []
    for other in OTHER_REGIONS:
        # A parse of each run first (cheap) picks the regions worth the matcher's full pass.
        if other != region and any(_valid_in(run, other) for run in runs):
            out += [(m.start, m.end) for m in PhoneNumberMatcher(text, other, leniency=Leniency.EXACT_GROUPING)
                    if _plausible(text, m.start, m.end)]
    return out


@lru_cache(maxsize=8192)
def _valid_in(run: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(run, region))
    except phonenumbers.NumberParseException:
        return False


def _plausible(text: str, a: int, b: int) -> bool:
    """False for what libphonenumber accepts but the context shows is something else: a date, a
    version ("3.2.29369.801"), more than 15 digits (an order number), a number after '#'
    ("order #612345678"), or a piece of a longer token ("INV-1994-60300", "849,84")."""
    raw = text[a:b]
    if _DATE.fullmatch(raw) or sum(c.isdigit() for c in raw) > 15:      # E.164 allows 15 digits at most
        return False
    if _VERSION.fullmatch(raw):
        return False
    before = text[max(0, a - 2):a]
    if before[-1:] == "#" or before[-2:] == "# ":
        return False
    if len(before) == 2 and before[1] in "-./" and (before[0].isdigit() or (before[1] == "-" and before[0].isalpha())):
        return False
    after = text[b:b + 2]
    return not (len(after) == 2 and after[0] in "-./," and after[1].isdigit())


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a < out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out


def redact(text: str, spans: list[tuple[int, int]], token: str = "[PHONE]") -> str:
    out, at = [], 0
    for a, b in spans:
        out += [text[at:a], token]
        at = b
    out.append(text[at:])
    return "".join(out)
