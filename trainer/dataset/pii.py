"""Offline PII scrubbing: consistent pseudonyms for participants, typed redaction for the rest.

Contract: `Scrubber.scrub(text)` returns the text with
- participants' names and handles (from the exports' metadata, never guessed) replaced by stable
  pseudonyms: the owner becomes the persona's display name, everyone else "Person N" (the same
  person gets the same pseudonym everywhere in one dataset, so conversations stay coherent);
- @handles replaced by stable "@userN" pseudonyms;
- emails, URLs, IBANs (mod-97 checked), card numbers (Luhn checked), IP addresses and phone
  numbers replaced by [EMAIL], [URL], [IBAN], [CARD], [IP], [PHONE]. Phone numbers are found by
  libphonenumber (`trainer.dataset.phones`), in international form always and in national form
  for the region of the text's source (`scrub(text, region=...)`, else the scrubber's `region`).
Names are matched case-insensitively and Unicode-correctly (`trainer.textmatch.fold`): "İlker",
"ilker", "ILKER" and "Straße", "STRASSE" are the same name. A single part of a name ("Anna" of
"Anna Berg") is matched the same way, except that an all-lower-case occurrence of a part that is
also a common word ("will" for "Will Hart", "mark") is left alone.
`counts` tallies each type. Nothing here makes a network call or loads a model (NER would be an
optional extra detector; the regex/checksum/libphonenumber baseline is what runs by default).
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter

from trainer.dataset.phones import find_phones, redact
from trainer.textmatch import WORD_MARKS, FoldedText, fold, literal_trie

_EMAIL = r"(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,})"
_URL = r"(?P<url>\b(?:https?://|www\.)[^\s<>\"']+)"
_IBAN = r"(?P<iban>\b[A-Z]{2}\d{2}(?:[ \u00a0]?[A-Z0-9]){11,30}\b)"
_CARD = r"(?P<card>(?<![\d.])[1-9](?:[ \u00a0-]?\d){12,18}(?!\d|\.\d))"      # no card number starts with 0
_IPV4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP = (r"(?P<ip>(?<![\d.])(?:" + _IPV4 + r"\.){3}" + _IPV4 + r"(?![\d.])"
       r"|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){2,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?(?![\w:]))")
_HANDLE = r"(?P<handle>(?<![\w@.])@[A-Za-z0-9_][A-Za-z0-9_.]{1,30}[A-Za-z0-9_])"
_DETECTORS = re.compile("|".join((_EMAIL, _URL, _IBAN, _CARD, _IP, _HANDLE)))
# Most chat lines contain none of these characters; skipping them keeps scrubbing cheap.
_MAYBE = re.compile(r"[\d@]|http|www\.")
_QUICK = re.compile(r"http|www\.")          # with _DIGIT_AT, _MAYBE for folded text; Scrubber._compile adds names
_DIGIT_AT = re.compile(r"[\d@]")
_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"\w+")
_EDGE = r"[\w" + WORD_MARKS + "]"

TYPES = ("email", "url", "iban", "card", "ip", "phone", "handle", "name")

# Given names and surnames that are also everyday words: a name part among these is replaced only
# when written with a capital ("Will", "WILL"), not as "will" in "I will".
COMMON_WORDS = frozenset("""
will mark rose may june april august grace hope faith joy bill jack frank art amber sky summer dawn daisy lily iris ivy ruby
pearl jade crystal penny sandy rich gene guy jean drew chase cliff dean glen grant heath hunter lane miles rob rod wade ward
wolf young king bishop baker black white brown green gray grey long short little small hill wood woods field fields stone
rock river brook lake bush bird fox hart hunt sun star sunny honey cherry bell belle holly heather olive violet hazel amy
max ray sue pat don ed al bob tom jim kim lee van von de del da la le di mo sam ben dan ken ali eve ann anne can say win
berg klein lange lang kurz ernst fuchs vogel wolf koch schmied fischer weber meyer rose engel frei bach stein
sol luz paz mar flor blanca rosa lucia jesus cruz santos angel angeles leon reyes
""".split())


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "").replace("\u00a0", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _name_parts(name: str) -> list[str]:
    """Distinctive parts of a display name: capitalised words of 3+ letters ("Anna" of "Anna Berg")."""
    return [w for w in re.findall(r"[^\W\d_]{3,}", name) if w[0].isupper()]


class Scrubber:
    """One per dataset build, so pseudonyms are consistent across all of its sources.

    `region` is the default phone region (ISO code such as "GB") for texts whose source gives none."""

    def __init__(self, owner_pseudonym: str = "Assistant", region: str | None = None):
        self.owner_pseudonym = owner_pseudonym
        self.region = region
        self.counts: Counter = Counter()
        self._pseudonyms: dict[str, str] = {}      # folded full name -> pseudonym
        self._parts: dict[str, str] = {}           # folded name part -> pseudonym
        self._handles: dict[str, str] = {}
        self._pseudonym_of: dict[str, str] = {}    # exact name as given -> pseudonym (a cache for `pseudonym`)
        self._names_rx: re.Pattern | None = None   # full names and parts, over folded text
        self._first_words: frozenset[str] = frozenset()   # folded first word of every name/part: a cheap prefilter
        self._quick: re.Pattern | None = _QUICK        # finds nothing in (folded) text that needs no scrubbing
        self._needles: list[str] | None = ["http", "www."]     # the quick test's words, for str.find (see _compile)
        self._dirty = False

    # -- participants -------------------------------------------------------------------------
    def add_participant(self, name: str, *, owner: bool = False, handle: str | None = None) -> str:
        """Register a participant's display name (and handle); returns the pseudonym used for them."""
        name = (name or "").strip()
        key = fold(name)
        if not name:
            return self.owner_pseudonym if owner else "Person"
        if key not in self._pseudonyms:
            self._pseudonyms[key] = self.owner_pseudonym if owner else f"Person {sum(1 for v in self._pseudonyms.values() if v != self.owner_pseudonym) + 1}"
            for part in _name_parts(name):
                self._parts.setdefault(fold(part), self._pseudonyms[key])
            self._dirty = True
        if handle:
            self._handle(handle.lstrip("@"))
        return self._pseudonyms[key]

    def pseudonym(self, name: str) -> str:
        found = self._pseudonym_of.get(name)
        if found is None:
            # A name's pseudonym never changes once given, so it is remembered by the exact name too.
            found = self._pseudonyms.get(fold((name or "").strip())) or self.add_participant(name)
            self._pseudonym_of[name] = found
        return found

    def _handle(self, handle: str) -> str:
        key = handle.casefold()
        if key not in self._handles:
            self._handles[key] = f"@user{len(self._handles) + 1}"
        return self._handles[key]

    def _compile(self) -> None:
        names = [n for n in self._pseudonyms if len(n) >= 2]
        parts = [p for p in self._parts if p not in self._pseudonyms]
        words = sorted({*names, *parts}, key=len, reverse=True)     # longest first: "anna berg" before "anna"
        self._names_rx = (re.compile(r"(?<!" + _EDGE + r")(?:" + "|".join(map(re.escape, words)) + r")(?!" + _EDGE + r")")
                          if words else None)
        firsts = set()
        for n in words:
            found = _WORDS.findall(n)
            firsts.add(found[0] if found else "")     # a name without word characters: always run the regex
        self._first_words = frozenset(firsts)
        # A quick test that every text needing any work passes: a name's first word or a URL start
        # ("http", "www.") anywhere in the folded text (folding keeps these), or a digit or '@' (the
        # other detectors' first characters). It only ever lets through more than the exact tests in
        # `scrub`. The words go into one regex shaped as a trie, which Python's regex engine scans
        # much faster than a plain alternation.
        self._quick = None if "" in firsts else re.compile(literal_trie(firsts | {"http", "www."}))
        # `scrub_many` looks for a few words with str.find instead (faster than the regex); with many
        # names (a big group chat) one regex pass beats a pass per word.
        self._needles = sorted(firsts | {"http", "www."}) if self._quick is not None and len(firsts) <= 48 else None
        self._dirty = False

    # -- scrubbing ----------------------------------------------------------------------------
    def _detected(self, m: re.Match) -> str:
        kind = m.lastgroup
        value = m.group(0)
        if kind == "card":
            if not luhn_ok(re.sub(r"\D", "", value)):
                return value            # not a card; the phone detector has its say next
        elif kind == "iban":
            while not iban_ok(value):
                if " " not in value.strip():
                    return m.group(0)
                value = value.rsplit(" ", 1)[0]
            self.counts["iban"] += 1
            return "[IBAN]" + m.group(0)[len(value):]
        elif kind == "url":
            stripped = value.rstrip(".,!?;:)]}'\"")
            self.counts["url"] += 1
            return "[URL]" + value[len(stripped):]
        elif kind == "handle":
            self.counts["handle"] += 1
            return self._handle(value[1:])
        self.counts[kind] += 1
        return f"[{kind.upper()}]"

    def _name(self, m: re.Match, original: str) -> str | None:
        key = m.group(0)
        pseudonym = self._pseudonyms.get(key)
        if pseudonym is None:
            if key in COMMON_WORDS and original == original.lower():
                return None             # "will", not "Will"
            pseudonym = self._parts[key]
        self.counts["name"] += 1
        return pseudonym

    def scrub(self, text: str, region: str | None = None) -> str:
        if not text:
            return text
        if self._dirty:
            self._compile()
        folded = fold(text)
        if self._quick is not None and self._quick.search(folded) is None and _DIGIT_AT.search(text) is None:
            return text
        return self._scrub(text, folded, region)

    def _scrub(self, text: str, folded: str, region: str | None) -> str:
        """`scrub` for a text the quick test flagged (`folded` = fold(text))."""
        if _MAYBE.search(text):
            text = _DETECTORS.sub(self._detected, text)
            if _DIGIT.search(text):
                spans = find_phones(text, region or self.region)
                if spans:
                    self.counts["phone"] += len(spans)
                    text = redact(text, spans)
            folded = fold(text)
        firsts = self._first_words
        if "" not in firsts and firsts.isdisjoint(_WORDS.findall(folded)):
            return text
        if self._names_rx is not None:
            text = FoldedText(text).sub(self._names_rx, self._name)[0]
        return text

    def scrub_many(self, texts: list[str], region: str | None = None) -> list[str]:
        """`[self.scrub(t, region) for t in texts]`, with the quick test run once over the whole batch:
        only the texts it finds something in are scrubbed one by one, the rest are returned as they are."""
        if self._dirty:
            self._compile()
        if self._quick is None or len(texts) < 2:
            return [self.scrub(t, region) if t else t for t in texts]
        lows = [fold(t) for t in texts]
        joined = "\n".join(lows)       # no test matches across '\n': each match lies inside one text
        starts: list[int] = []
        flagged: set[int] = set()

        def flag(at: int) -> int:
            """Flags the text holding position `at` of `joined`; returns where the next text starts."""
            if not starts:
                pos = 0
                for low in lows:
                    starts.append(pos)
                    pos += len(low) + 1
                starts.append(pos)
            i = bisect_right(starts, at) - 1
            flagged.add(i)
            return starts[i + 1]

        if self._needles is not None:
            # The quick test's words one by one with str.find, which scans several times faster than
            # the trie regex; one hit per text is enough, so the search goes on at the next text.
            for needle in self._needles:
                at = joined.find(needle)
                while at >= 0:
                    at = joined.find(needle, flag(at))
        else:
            at = 0
            while (m := self._quick.search(joined, at)) is not None:
                at = flag(m.start())
        # Digits and '@' (folding keeps them, so the test reads the same on the folded text).
        search = _DIGIT_AT.search
        at = 0
        while (m := search(joined, at)) is not None:
            at = flag(m.start())
        if not flagged:
            return list(texts)
        return [self._scrub(t, lows[i], region) if i in flagged and t else t for i, t in enumerate(texts)]

    def report(self) -> dict:
        return {t: int(self.counts.get(t, 0)) for t in TYPES}
