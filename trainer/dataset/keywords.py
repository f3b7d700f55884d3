"""Words that carry a text's meaning: stop words removed, placeholders and pseudonyms ignored.

`stop_words(language)` is the `stop-words` package's list for an ISO 639-1 code; with no language
(an export rarely says which it is in) it is the union of the languages the project meets most, so
"und" and "the" are both dropped. `content_words(text)` yields a text's words minus stop words,
numbers, the scrubber's placeholders ([URL], @user3, Person 2) and very short tokens, lower-cased.
`keywords(text, n)` picks the `n` longest of them, in the order they appear in the text. Both the
prompted-posts prompts and `twin insights` use these, so "top words" and "keywords" agree.
"""
from __future__ import annotations

import re
from functools import lru_cache

DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl")
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]{2}", re.UNICODE)
# Words the pipeline itself puts into text: PII placeholders, pseudonyms, media/link tokens.
_PIPELINE_WORDS = frozenset({"url", "email", "iban", "card", "ip", "phone", "person", "link", "image", "video",
                             "audio", "gif", "sticker", "file", "tweet", "post", "media", "http", "https", "www",
                             "amp", "rt", "via"})
_PLACEHOLDER = re.compile(r"\[[A-Za-z]+\]|<media:[\w-]+>|@\w+|https?://\S+|www\.\S+")


@lru_cache(maxsize=16)
def stop_words(language: str | None = None) -> frozenset[str]:
    from stop_words import get_stop_words

    languages = (language,) if language else DEFAULT_LANGUAGES
    words: set[str] = set()
    for lang in languages:
        try:
            words.update(w.lower() for w in get_stop_words(lang))
        except Exception:           # the package raises its own error for a language it lacks
            continue
    return frozenset(words)


def content_words(text: str, language: str | None = None) -> list[str]:
    stop = stop_words(language)
    out = []
    for m in _WORD.finditer(_PLACEHOLDER.sub(" ", text)):
        w = m.group(0).lower().strip("'’-")
        if len(w) < 3 or w in stop or w in _PIPELINE_WORDS or re.fullmatch(r"user\d+", w):
            continue
        out.append(w)
    return out


def keywords(text: str, n: int = 3, language: str | None = None) -> list[str]:
    words = list(dict.fromkeys(content_words(text, language)))     # distinct, first occurrence order
    chosen = set(sorted(words, key=lambda w: (-len(w), words.index(w)))[:n])
    return [w for w in words if w in chosen]
