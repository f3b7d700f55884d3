"""Token counting with real tokenizers: counts equal the tokenizer's own encoding, every distinct
text is counted once, and `dataset build` with the embedded model's tokenizer (slow: it needs the
converted SmolLM2)."""
from __future__ import annotations

import json
import random

import pytest

from tests.trainer.dataset.conftest import OWNER, write_chat
from trainer.dataset.tokens import ByteLevelCounts, TokenCounter, TokenizerFile, load_tokenizer

SAMPLES = [
    "hello there, how are you?", "it's   spaced\n\n  out\t\ttabs ", "I'M HERE'S we'll they've", "Grüße aus München! 😂😂",
    "東京で会いましょう。明日は？", "مرحبا كيف حالك؟ ١٢٣", "नमस्ते दोस्त", "ẞtraße İlker", "3.14159 and 1,000,000 ½ ²",
    "👨‍👩‍👧‍👦 family", "<|im_start|>user hi<|im_end|>", "", " ", "\n", "x" * 300, "a\x0bb \x1c c", "snake_case __init__",
    # ASCII plus only non-letter, non-number, non-space characters (the faster `re` split), and near misses.
    "ok 👍🏽 it's ❤️ fine", "'😂s 😂't 😂", " 😂 \n\n 😂\t", "—«€» …\u200d\u0301", "\xa0😂", "😂\u2003x", "😂 é", "😂²",
]


def _random_texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    pools = [(32, 126), (0xA0, 0x2FFF), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0x0600, 0x06FF), (0x1F300, 0x1FAFF)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 50)):
            lo, hi = rng.choice(pools)
            chars.append(chr(rng.randint(lo, hi)) if rng.random() < 0.9 else rng.choice(" \n\t"))
        out.append("".join(chars))
    return out


def _encoded(tokenizer, texts):
    return [len(e) for e in tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_counts_equal_the_tokenizers_own_encoding(tiny_llama_dir):
    tok = load_tokenizer(str(tiny_llama_dir))
    assert isinstance(tok, TokenizerFile) and ByteLevelCounts.for_tokenizer(tok.backend_tokenizer) is not None
    texts = SAMPLES + _random_texts(2000)
    counter = TokenCounter(tok)
    assert counter.count_many(texts) == _encoded(tok, texts)
    assert counter.count("hello there") == len(tok.encode("hello there")) and counter.count("") == 0


def test_each_distinct_text_is_encoded_once(tiny_llama_dir):
    tok = load_tokenizer(str(tiny_llama_dir))
    seen = []

    class Recording:
        """A tokenizer without byte-level counting: every text it encodes is recorded."""
        backend_tokenizer = tok.backend_tokenizer
        name_or_path = "recording"

        def __init__(self):
            backend = tok.backend_tokenizer

            class Backend:
                def encode_batch(self, texts, add_special_tokens=False):
                    seen.extend(texts)
                    return backend.encode_batch(texts, add_special_tokens=add_special_tokens)

                def encode(self, text, add_special_tokens=False):
                    seen.append(text)
                    return backend.encode(text, add_special_tokens=add_special_tokens)

                def to_str(self):
                    return "{}"        # not byte-level as far as the counter can tell: the batch encoder counts

            self.backend_tokenizer = Backend()

    counter = TokenCounter(Recording())
    first = counter.count_many(["a b", "c d", "a b", "e"])
    again = counter.count_many(["c d", "e", "a b"]) + [counter.count("e")]
    assert sorted(seen) == ["a b", "c d", "e"]          # each once, in one batch
    assert first == _encoded(tok, ["a b", "c d", "a b", "e"]) and again == [first[1], first[3], first[0], first[3]]


def test_non_byte_level_tokenizers_are_encoded(tiny_llama_dir):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    wordlevel = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    wordlevel.pre_tokenizer = pre_tokenizers.Whitespace()
    wordlevel.normalizer = normalizers.Lowercase()
    assert ByteLevelCounts.for_tokenizer(wordlevel) is None

    class Wrapped:
        backend_tokenizer = wordlevel
        name_or_path = "wordlevel"

    assert TokenCounter(Wrapped()).count_many(["A b", "a a a", ""]) == [2, 3, 0]


@pytest.mark.slow
def test_embedded_tokenizer_counts_exactly(real_models_dir):
    from bot.backends.local_models import EMBEDDED_MODEL, ensure_embedded_model

    ensure_embedded_model(real_models_dir)
    tok = load_tokenizer(EMBEDDED_MODEL, models_dir=real_models_dir)
    assert isinstance(tok, TokenizerFile)
    texts = SAMPLES + _random_texts(3000, seed=2)
    assert TokenCounter(tok).count_many(texts) == _encoded(tok, texts)
    # The same counts as the transformers tokenizer the trainer uses.
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(real_models_dir / EMBEDDED_MODEL), local_files_only=True)
    assert TokenCounter(tok).count_many(SAMPLES) == [len(ids) for ids in hf(SAMPLES, add_special_tokens=False)["input_ids"]]


@pytest.mark.slow
async def test_build_with_the_embedded_tokenizer(db, settings, tmp_path, persona, real_models_dir):
    from bot.backends.local_models import EMBEDDED_MODEL, ensure_embedded_model
    from trainer.dataset.build import BuildOptions, build_dataset
    from trainer.dataset.ingest import import_export
    from trainer.importers import ImportOptions

    ensure_embedded_model(real_models_dir)
    tok = load_tokenizer(EMBEDDED_MODEL, models_dir=real_models_dir)
    await import_export(db, persona="twin", kind="whatsapp", path=write_chat(tmp_path / "chat.txt", 30),
                        options=ImportOptions(owner=(OWNER,)))
    # Small windows, so conversations are split between turns by real token counts.
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, tokenizer=tok,
                                 options=BuildOptions(val_fraction=0.2, max_tokens=140))
    manifest = result.manifest
    assert manifest["tokenizer"].endswith(EMBEDDED_MODEL) and manifest["validation"]["ok"]
    assert manifest["cleanup"]["sessions_split_into_windows"] > 0
    counter = TokenCounter(tok)
    for line in (result.folder / "train.jsonl").read_text(encoding="utf-8").splitlines():
        example = json.loads(line)
        assert counter.count_chat(example["messages"]) <= 140
    assert 100 < manifest["validation"]["distributions"]["tokens"]["max"] <= 140
