"""Per-message clean-up before turns are assembled.

`Cleaner.clean(kind, text)` returns the text to keep or None to drop, and counts every drop and
change by reason in `stats`:
- system/service lines are dropped;
- a media-only message (a photo, a sticker, "<Media omitted>") is dropped and counted
  (`dropped_media_only`): it says nothing in the member's words, and a placeholder turn would teach
  the model to answer with one; media with a caption keep the caption, behind a typed placeholder
  ("[image] look at this") or alone (`media="drop"`);
- link-only messages become "[link]" or are dropped;
- deliberate silence stays as "" (an empty assistant turn);
- over-long messages are capped at `max_chars` (cut at a line or word boundary, marked with "…");
- punctuation, emoji and newlines are kept: they are the style being cloned.
`is_filler` tells the builder which assistant turns to down-weight ("ok", "lol", "👍").
"""
from __future__ import annotations

import re
from collections import Counter

_MEDIA = re.compile(r"^<media:([\w-]+)>")
_LINK_ONLY = re.compile(r"^\s*(?:(?:https?://|www\.)\S+\s*)+$")
_FILLER = {
    "ok", "okay", "k", "kk", "okk", "oki", "lol", "lmao", "haha", "hahaha", "hah", "ha", "hehe", "xd", "yes", "yeah", "yep",
    "ya", "no", "nope", "sure", "thx", "thanks", "ty", "np", "hm", "hmm", "mhm", "ah", "oh", "cool", "nice", "same", "true",
    "jk", "idk", "omg", "wow", "yup", "alright", "fine", "good", "ja", "nein", "jo", "si", "vale", "да", "ок",
}
_EMOJI_ONLY = re.compile(r"^[\W_]{1,6}$")


def is_filler(text: str) -> bool:
    t = text.strip().lower().rstrip("!.?~ ")
    if not t:
        return False
    if t in _FILLER or (len(t) <= 12 and re.fullmatch(r"(ha|he|lo|l)+[hal]*", t)):
        return True
    return bool(_EMOJI_ONLY.match(t)) and not any(c.isalnum() for c in t)


class Cleaner:
    def __init__(self, *, media: str = "placeholder", links: str = "placeholder", max_chars: int = 2000):
        if media not in ("placeholder", "drop") or links not in ("placeholder", "drop"):
            raise ValueError("media/links must be 'placeholder' or 'drop'")
        self.media, self.links, self.max_chars = media, links, max_chars
        self.stats: Counter = Counter()

    def clean(self, kind: str, text: str) -> str | None:
        if kind == "system":
            self.stats["dropped_system"] += 1
            return None
        if kind == "silence":
            return ""
        text = (text or "").rstrip()
        m = _MEDIA.match(text) if kind == "media" or text.startswith("<media:") else None
        if m:
            caption = text[m.end():].strip()
            if not caption:
                self.stats["dropped_media_only"] += 1
                return None
            self.stats["media_caption_kept"] += 1
            text = caption if self.media == "drop" else f"[{m.group(1)}] {caption}"
        elif kind == "link" or (("://" in text or "www." in text) and _LINK_ONLY.match(text)):
            if self.links == "drop":
                self.stats["dropped_link_only"] += 1
                return None
            self.stats["link_placeholders"] += 1
            text = "[link]"
        if not text.strip():
            self.stats["dropped_empty"] += 1
            return None
        if len(text) > self.max_chars:
            self.stats["capped_long"] += 1
            cut = text[: self.max_chars]
            boundary = max(cut.rfind("\n"), cut.rfind(" "))
            text = (cut[:boundary] if boundary > self.max_chars // 2 else cut).rstrip() + "…"
        return text
