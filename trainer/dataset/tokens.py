"""Token counting with the persona's model tokenizer, or an estimate when there is none.

`TokenCounter(tokenizer)` accepts a Hugging Face tokenizer, a `TokenizerFile`, any callable
`text -> int`, or None (then ~4 characters per token, rounded up: close enough for English chat and
clearly labelled as an estimate in reports). With a fast tokenizer (one with a `backend_tokenizer`,
the `tokenizers` library's Rust tokenizer), texts are counted in batches with its batch encoder,
and every distinct text is counted once per counter: a turn repeated as context in the next window,
or validated after windowing, is looked up, not re-tokenised. Byte-level BPE tokenizers (the
embedded SmolLM2's kind) are counted exactly from their pre-tokens (`ByteLevelCounts`), which a
chat repeats so often that this is several times faster than encoding every text. `count_chat` adds the per-message
overhead of a ChatML-style template (`<|im_start|>role\\n ... <|im_end|>\\n`).

`load_tokenizer` finds a tokenizer without network access. A folder with `tokenizer.json` is read
with the `tokenizers` library alone (`TokenizerFile`: the same Rust tokenizer a transformers fast
tokenizer wraps, without importing transformers); other folders go through `AutoTokenizer`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from bot.engine.tokens import estimate_text_tokens

MESSAGE_OVERHEAD = 4      # <|im_start|>, role, newline, <|im_end|> (+ newline) in ChatML
BATCH = 8192              # texts per call of the batch encoder


class TokenizerFile:
    """A fast tokenizer straight from a `tokenizer.json`: counting is all a dataset build needs."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_file(str(path))
        self.name_or_path = str(Path(path).parent)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids


# GPT-2's pre-tokenizer pattern, as the `tokenizers` ByteLevel pre-tokenizer applies it (use_regex),
# and the same pattern spelled out for ASCII text, where the standard `re` module reads it the
# same way and about twice as fast (\p{L} is [A-Za-z], \p{N} [0-9], \s the six ASCII spaces).
_BYTE_LEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_ASCII_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^ \t\n\r\f\vA-Za-z0-9]+"""
                  r"""|[ \t\n\r\f\v]+(?![^ \t\n\r\f\v])|[ \t\n\r\f\v]+""")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what ByteLevel feeds the BPE model)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class ByteLevelCounts:
    """Exact token counts for a byte-level BPE tokenizer (GPT-2, Llama 3, SmolLM, Qwen style), summed
    over its pre-tokens: such a tokenizer splits a text with one regex, and BPE never merges across
    two pieces, so a text's count is the sum of its pieces' counts, and chat repeats the same few
    thousand pieces endlessly. Each distinct piece goes through the tokenizer's own BPE model once.
    `for_tokenizer` returns None unless the tokenizer has exactly that shape (no normalizer, a
    ByteLevel pre-tokenizer with its regex, BPE without dropout); texts containing an added token
    ("<|im_start|>") are left to the real encoder (`None` from `count`)."""

    def __init__(self, backend, added: list[str]):
        import re

        import regex

        self._split = regex.compile(_BYTE_LEVEL_PATTERN).findall
        self._split_ascii = re.compile(_ASCII_PATTERN).findall
        # Non-ASCII characters that are neither letters, numbers nor spaces by the `regex` module's
        # reckoning (emoji, symbols, punctuation, marks): _ASCII_PATTERN puts each of them in the same
        # classes as _BYTE_LEVEL_PATTERN does (the "other" class, and no other), so a text whose only
        # non-ASCII characters are such is split the same by the faster `re` form. Chat's emoji.
        self._other = regex.compile(r"[^\s\p{L}\p{N}]").fullmatch
        self._others: dict[str, bool] = {}
        self._non_ascii = re.compile(r"[^\x00-\x7f]").findall
        self._model = backend.model
        self._byte = _bytes_to_unicode()
        self._pieces: dict[str, int] = {}
        self._added = regex.compile("|".join(map(regex.escape, sorted(added, key=len, reverse=True)))).search if added else None

    @classmethod
    def for_tokenizer(cls, backend) -> "ByteLevelCounts | None":
        import json

        try:
            spec = json.loads(backend.to_str())
        except Exception:  # noqa: BLE001 - a tokenizer that cannot describe itself is counted by encoding
            return None
        pre, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
        if (spec.get("normalizer") is not None or pre.get("type") != "ByteLevel" or pre.get("add_prefix_space")
                or not pre.get("use_regex", True) or model.get("type") != "BPE" or model.get("dropout")
                or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or model.get("byte_fallback")):
            return None
        return cls(backend, [a["content"] for a in spec.get("added_tokens") or [] if a.get("content")])

    def _only_others(self, text: str) -> bool:
        """Whether every non-ASCII character of `text` is in the pattern's "other" class (see __init__)."""
        others = self._others
        for ch in self._non_ascii(text):
            known = others.get(ch)
            if known is None:
                known = others[ch] = self._other(ch) is not None
            if not known:
                return False
        return True

    def count(self, text: str) -> int | None:
        if self._added is not None and "<" in text and self._added(text):
            return None
        pieces = self._pieces
        split = self._split_ascii if text.isascii() or self._only_others(text) else self._split
        try:
            return sum(map(pieces.__getitem__, split(text)))
        except KeyError:
            pass
        total = 0
        for piece in split(text):
            n = pieces.get(piece)
            if n is None:
                n = pieces[piece] = len(self._model.tokenize("".join(map(self._byte.__getitem__, piece.encode("utf-8")))))
            total += n
        return total


class TokenCounter:
    def __init__(self, tokenizer=None):
        self.name = "estimate (chars/4)"
        self._count: Callable[[str], int]
        self._batch: Callable[[list[str]], list[int]] | None = None
        self._cache: dict[str, int] = {}
        self._estimate = tokenizer is None
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if tokenizer is None:
            self._count = estimate_text_tokens
        elif backend is not None and hasattr(backend, "encode_batch"):
            self.name = getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
            encode = getattr(backend, "encode_batch_fast", None) or backend.encode_batch     # _fast: no offsets
            encoded = lambda texts: [len(e) for e in encode(texts, add_special_tokens=False)]  # noqa: E731
            pieces = ByteLevelCounts.for_tokenizer(backend)
            self._batch = encoded if pieces is None else lambda texts: _with_fallback(texts, pieces.count, encoded)
            self._count = lambda text: self._batch([text])[0]
        elif hasattr(tokenizer, "encode"):
            self.name = getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
            self._count = lambda text: len(tokenizer.encode(text, add_special_tokens=False))
            if callable(tokenizer):
                self._batch = lambda texts: [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        elif callable(tokenizer):
            self.name = getattr(tokenizer, "__name__", "callable")
            self._count = tokenizer
        else:
            raise TypeError("tokenizer must be a tokenizer with .encode, a callable text -> int, or None")

    @property
    def is_estimate(self) -> bool:
        return self.name.startswith("estimate")

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._estimate:
            return self._count(text)
        found = self._cache.get(text)
        if found is None:
            found = self._cache[text] = self._count(text)
        return found

    def count_many(self, texts: list[str]) -> list[int]:
        """Token counts of `texts`; each distinct text is encoded once (in batches), then remembered."""
        if self._estimate:
            return [estimate_text_tokens(t) for t in texts]
        cache = self._cache
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            if self._batch is not None:
                for i in range(0, len(missing), BATCH):
                    chunk = missing[i:i + BATCH]
                    cache.update(zip(chunk, self._batch(chunk)))
            else:
                cache.update((t, self._count(t) if t else 0) for t in missing)
        return [cache[t] for t in texts]

    def count_chat(self, messages: list[dict]) -> int:
        return sum(c + MESSAGE_OVERHEAD for c in self.count_many([m.get("content") or "" for m in messages])) + 1


def _with_fallback(texts: list[str], count, encoded) -> list[int]:
    """`count` of each text, and the batch encoder for those it leaves (None) to it."""
    out = list(map(count, texts))
    left = [i for i, n in enumerate(out) if n is None]
    if left:
        for i, n in zip(left, encoded([texts[i] for i in left])):
            out[i] = n
    return out


def load_tokenizer(model: str, *, override: Path | None = None, models_dir: Path | None = None):
    """A local tokenizer for `model` (an explicit folder, a local model folder, or a cached copy in
    the data directory's models folder); None when none is available offline."""
    candidates = []
    if override is not None:
        candidates.append(Path(override))
    if model:
        candidates.append(Path(model))
        if models_dir is not None and not Path(model).is_absolute():     # a folder path is not a cache name
            candidates += [models_dir / model, *sorted(models_dir.glob(f"{model}*"))]
    for folder in candidates:
        if folder.is_dir() and (folder / "tokenizer.json").is_file():
            try:
                return TokenizerFile(folder / "tokenizer.json")
            except Exception:  # noqa: BLE001 - not readable by `tokenizers` alone: transformers may still read the folder
                pass
        if folder.is_dir() and any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
            try:
                from transformers import AutoTokenizer

                return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except Exception:  # noqa: BLE001 - an unreadable tokenizer falls back to the estimate, and the report says so
                continue
    if override is not None:
        raise FileNotFoundError(f"{override}: no tokenizer files (tokenizer.json / tokenizer_config.json)")
    return None
