"""Token counting with the persona's model tokenizer, or an estimate when there is none.

`TokenCounter(tokenizer)` accepts a Hugging Face tokenizer, any callable `text -> int`, or None
(then ~4 characters per token, rounded up: close enough for English chat and clearly labelled as an
estimate in reports). `count_chat` adds the per-message overhead of a ChatML-style template
(`<|im_start|>role\\n ... <|im_end|>\\n`). `load_tokenizer` finds a tokenizer without network access.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from bot.engine.tokens import estimate_text_tokens

MESSAGE_OVERHEAD = 4      # <|im_start|>, role, newline, <|im_end|> (+ newline) in ChatML


class TokenCounter:
    def __init__(self, tokenizer=None):
        self.name = "estimate (chars/4)"
        self._count: Callable[[str], int]
        self._batch = None
        self._estimate = tokenizer is None
        if tokenizer is None:
            self._count = estimate_text_tokens
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
        return self._count(text) if text else 0

    def count_many(self, texts: list[str]) -> list[int]:
        if self._batch is not None and texts:
            return self._batch(texts)
        if self._estimate:
            return [estimate_text_tokens(t) for t in texts]
        return [self.count(t) for t in texts]

    def count_chat(self, messages: list[dict]) -> int:
        return sum(self.count(m.get("content") or "") + MESSAGE_OVERHEAD for m in messages) + 1


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
        if folder.is_dir() and any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
            try:
                from transformers import AutoTokenizer

                return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except Exception:  # noqa: BLE001 - an unreadable tokenizer falls back to the estimate, and the report says so
                continue
    if override is not None:
        raise FileNotFoundError(f"{override}: no tokenizer files (tokenizer.json / tokenizer_config.json)")
    return None
