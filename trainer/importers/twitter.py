"""Twitter/X archives: `data/tweets.js` (older: `tweet.js`) plus every `tweets-partN.js`, a folder,
the archive .zip, or one .js file. The legacy `Grailbird.data.tweets_YYYY_MM = [...]` files work too.

Every tweet is the owner's. HTML entities are unescaped and t.co links to attached media removed.
Retweets and quote tweets are built on someone else's words and are skipped (counted). Reply chains are rebuilt where the
parent is one of the owner's own tweets (the archive lacks everyone else's); a reply to someone
else starts its conversation with a `<media:tweet>` placeholder from that account, so the owner's
reply still has a user turn to answer.
"""
from __future__ import annotations

import html
import re
from datetime import datetime

from trainer.importers._io import Tree, load_json
from trainer.importers.base import ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

EXPECTED = "a Twitter/X archive (data/tweets.js, tweet.js or tweets-partN.js: 'window.YTD.tweets.part0 = [...]')"
_PREFIX = re.compile(r"^\s*(?:window\.YTD\.(?P<ytd>[\w]+)\.part\d+|Grailbird\.data\.(?P<grail>\w+))\s*=\s*")
_TWEET_FILE = re.compile(r"(^|/)(tweets?(-part\d+)?\.js|\d{4}_\d{2}\.js)$", re.I)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")


def parse_created(value: str) -> datetime | None:
    for fmt in ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return datetime.strptime(value, fmt)
        except (ValueError, TypeError):
            continue
    return None


def _is_quote(tweet: dict) -> bool:
    return str(tweet.get("is_quote_status", "")).lower() == "true" or bool(tweet.get("quoted_status_id_str") or tweet.get("quoted_status"))


class TwitterImporter:
    kind = "twitter"
    description = "Twitter/X archive: tweets.js / tweet.js and tweets-partN.js (folder, zip or file)."
    posts = True

    def parse(self, path, options: ImportOptions) -> ParseResult:
        tree = Tree(path)
        names = tree.names() if tree.is_single_file else tree.find(_TWEET_FILE.pattern)
        if not names:
            raise ImportFormatError(f"{path}: no tweets.js / tweet.js found; expected {EXPECTED}")
        result = ParseResult()
        tweets: dict[str, dict] = {}
        owner_id = options.owner[0] if options.owner else None
        accounts = tree.find(r"(^|/)account\.js$")
        if accounts and owner_id is None:
            owner_id = self._account_id(tree, accounts[0])
        for name in names:
            self._load(tree, name, tweets, result)
        if not tweets and not result.problems:
            raise ImportFormatError(f"{path}: no tweets inside; expected {EXPECTED}")
        if owner_id is None:
            # Self-replies name the owner; otherwise a neutral id.
            owner_id = next((t["in_reply_to_user_id_str"] for t in tweets.values()
                             if t.get("in_reply_to_status_id_str") in tweets and t.get("in_reply_to_user_id_str")), "owner")
        result.participants[owner_id] = "owner"
        result.owner_ids = {owner_id}
        self._threads(tweets, owner_id, result)
        return result

    @staticmethod
    def _account_id(tree: Tree, name: str) -> str | None:
        text = _PREFIX.sub("", tree.read_text(name), count=1)
        try:
            data = load_json(text, tree.display(name), "account.js")
            return str(data[0]["account"]["accountId"])
        except (ImportFormatError, LookupError, TypeError):
            return None

    def _load(self, tree: Tree, name: str, tweets: dict, result: ParseResult) -> None:
        file = tree.display(name)
        text = tree.read_text(name)
        m = _PREFIX.match(text)
        if m and m.group("ytd") and not m.group("ytd").startswith("tweet"):
            raise ImportFormatError(f"{file}: this is the archive's {m.group('ytd')!r} file, not tweets; expected {EXPECTED}")
        if not m and tree.is_single_file and not text.lstrip().startswith("["):
            raise ImportFormatError(f"{file}: {EXPECTED}")
        body = text[m.end():] if m else text
        try:
            data = load_json(body, file, EXPECTED)
        except ImportFormatError:
            data = load_json(_TRAILING_COMMA.sub(r"\1", body), file, EXPECTED)   # legacy files end "}, ]"
        if not isinstance(data, list):
            raise ImportFormatError(f"{file}: expected a list of tweets; expected {EXPECTED}")
        for i, item in enumerate(data):
            tweet = item.get("tweet", item) if isinstance(item, dict) else None
            tid = str(tweet.get("id_str") or tweet.get("id") or "") if isinstance(tweet, dict) else ""
            if not tid:
                result.skip(Problem(file, f"record {i}", "not a tweet object with an id"), "bad_record")
                continue
            tweets[tid] = tweet

    @staticmethod
    def _text(tweet: dict) -> tuple[str, str]:
        text = html.unescape(str(tweet.get("full_text") or tweet.get("text") or ""))
        media = (tweet.get("extended_entities") or tweet.get("entities") or {}).get("media") or []
        for item in media:
            if isinstance(item, dict) and item.get("url"):
                text = text.replace(str(item["url"]), "")
        kind = "text"
        text = text.strip()
        if not text and media:
            first = media[0] if isinstance(media[0], dict) else {}
            text, kind = f"<media:{'video' if first.get('type') in ('video', 'animated_gif') else 'image'}>", "media"
        return text, kind

    def _threads(self, tweets: dict, owner_id: str, result: ParseResult) -> None:
        def root_of(tid: str) -> str:
            seen = set()
            while tweets[tid].get("in_reply_to_status_id_str") in tweets and tid not in seen:
                seen.add(tid)
                tid = str(tweets[tid]["in_reply_to_status_id_str"])
            return tid

        threads: dict[str, list] = {}
        for tid, tweet in tweets.items():
            text, kind = self._text(tweet)
            if text.startswith("RT @") or tweet.get("retweeted_status"):
                result.skip(Problem("tweets", f"tweet {tid}", "retweet (someone else's words)"), "retweet")
                continue
            if _is_quote(tweet):
                result.skip(Problem("tweets", f"tweet {tid}", "quote of another tweet (built on someone else's words)"), "quote")
                continue
            if not text:
                result.skip(Problem("tweets", f"tweet {tid}", "empty tweet"), "empty")
                continue
            threads.setdefault(root_of(tid), []).append((parse_created(str(tweet.get("created_at", ""))), tid, tweet, text, kind))
        for root, items in sorted(threads.items()):
            items.sort(key=lambda t: (t[0].timestamp() if t[0] else 0.0, int(t[1]) if t[1].isdigit() else 0))
            seq = 0
            first_tweet = tweets[root]
            parent = first_tweet.get("in_reply_to_status_id_str")
            if parent and parent not in tweets:
                handle = "@" + str(first_tweet.get("in_reply_to_screen_name") or "someone")
                uid = str(first_tweet.get("in_reply_to_user_id_str") or handle)
                result.participants.setdefault(uid, handle)
                result.messages.append(RawMessage(root, seq, items[0][0], uid, handle, "<media:tweet>", "media",
                                                  external_id=str(parent)))
                seq += 1
            for ts, tid, tweet, text, kind in items:
                result.messages.append(RawMessage(root, seq, ts, owner_id, "owner", text, kind,
                                                  reply_to=tweet.get("in_reply_to_status_id_str"), external_id=tid))
                seq += 1
