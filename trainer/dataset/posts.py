"""Prompted posts: a session of the owner's own posts (tweets, a Discord data package, Facebook or
Instagram posts and comments) becomes a training example although nobody else spoke.

Contract of `assemble_posts(messages, ...)`:
- each of the owner's posts becomes one assistant turn, exactly as written (after the same clean-up
  and PII scrubbing as every other message); several posts of one session (a thread of the owner's
  own tweets, a run of messages in one channel) become ONE multi-turn example, each earlier post
  being the context of the next;
- the first user turn is context where the export has any (a non-owner message with text), else a
  short neutral prompt from `POST_PROMPTS` (or `REPLY_PROMPTS` when the post answers someone whose
  words the export lacks: a reply to another account, a comment on someone's post), filled with
  keywords from the post itself; later posts of a thread follow a `CONTINUE_PROMPTS` turn;
- media-only and link-only posts are skipped and counted by reason (`post_media_only`,
  `post_link_only`); media placeholders are cut out of a post's text, so none reaches an
  assistant turn. Retweets and quotes of others never get here: importers skip and count them.
The template chosen for a post depends only on its text (stable across builds); every use is
counted in `PromptLog`, which the build writes to the manifest.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from trainer.dataset.cleanup import Cleaner
from trainer.dataset.keywords import keywords
from trainer.dataset.pii import Scrubber
from trainer.dataset.sessions import Msg

POST_PROMPTS = (
    "Write a post about {keywords}.",
    "Share a thought about {keywords}.",
    "What's on your mind about {keywords}?",
    "Post something about {keywords}.",
)
REPLY_PROMPTS = (
    "Reply to a post about {keywords}.",
    "Someone posted about {keywords}. What do you answer?",
)
CONTINUE_PROMPTS = ("Go on.", "Continue the thread.")
NO_KEYWORDS = "Write a post."

_MEDIA_TOKEN = re.compile(r"\s*<media:[\w-]+>\s*")
_URL = re.compile(r"(?:https?://|www\.)\S+")


@dataclass
class PromptLog:
    """Which prompt templates were used, and how often (for the manifest)."""
    used: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"templates": {"post": list(POST_PROMPTS), "reply": list(REPLY_PROMPTS),
                              "continue": list(CONTINUE_PROMPTS), "no_keywords": NO_KEYWORDS},
                "used": dict(sorted(self.used.items()))}


def _pick(templates: tuple[str, ...], text: str) -> str:
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")
    return templates[h % len(templates)]


def prompt_for(post: str, *, reply: bool, log: PromptLog) -> str:
    words = keywords(post)
    template = _pick(REPLY_PROMPTS if reply else POST_PROMPTS, post) if words else NO_KEYWORDS
    log.used[template] += 1
    return template.format(keywords=" and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words))


def post_text(m: Msg) -> tuple[str | None, str | None]:
    """(text to keep, or None and the skip reason) for one of the owner's posts."""
    if m.kind == "media":
        text = _MEDIA_TOKEN.sub(" ", m.text).strip()       # a caption survives; the placeholder never does
        return (text, None) if text and _URL.sub("", text).strip() else (None, "post_media_only")
    if m.kind == "link":
        return None, "post_link_only"
    if m.kind in ("system", "silence"):
        return None, "post_not_text"
    text = _MEDIA_TOKEN.sub(" ", m.text).strip() if "<media:" in m.text else m.text.strip()
    if not text:
        return None, "post_media_only"
    if not _URL.sub("", text).strip():
        return None, "post_link_only"
    return text, None


def is_monologue(messages: list[Msg]) -> bool:
    """Nobody but the owner wrote text in this session (placeholders of others' posts don't count)."""
    return any(m.is_owner for m in messages) and not any(not m.is_owner and m.kind == "text" for m in messages)


def assemble_posts(messages: list[Msg], *, cleaner: Cleaner, scrubber: Scrubber, stats: Counter, dropped: Counter,
                   log: PromptLog, region: str | None = None) -> list[dict] | None:
    reply = any(not m.is_owner and m.kind != "system" for m in messages)
    kept: list[str] = []
    for m in messages:
        if not m.is_owner:
            continue
        text, reason = post_text(m)
        if reason:
            dropped[reason] += 1
            continue
        text = cleaner.clean("text", text)
        if text:
            kept.append(text)
    if not kept:
        return None
    texts = scrubber.scrub_many(kept, region)
    turns = [{"role": "user", "content": prompt_for(texts[0], reply=reply, log=log)}]
    for i, text in enumerate(texts):
        if i:
            template = _pick(CONTINUE_PROMPTS, text)
            log.used[template] += 1
            turns.append({"role": "user", "content": template})
        turns.append({"role": "assistant", "content": text})
    stats["prompted_posts"] += len(texts)
    if len(texts) > 1:
        stats["post_threads"] += 1
    return turns
