"""Fixtures for the fine-tuning tests.

- `tiny_model_dir`: a tiny random Llama (2 layers, hidden 64) with a real byte-level BPE tokenizer
  and a ChatML chat template, built offline once per session. Uses the shared
  `tests.support.tiny_llama.build_tiny_llama` when present, else a local builder.
- `write_dataset(root, persona, version, train, val)`: writes a dataset version folder in the
  dataset builder's layout (`train.jsonl`, `val.jsonl`, `manifest.json`).
- `tutor_conversations`: small TIM-style conversations written here (not from ../shared).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "You are TIM, a kind tutor. Explain one idea at a time.",
    "What is photosynthesis? Plants turn light, water and carbon dioxide into sugar.",
    "Can you help me with fractions? Of course! A fraction is a part of a whole.",
    "Hello! How are you today? I am fine, thank you.",
    "Why is the sky blue? Sunlight scatters off the air, and blue scatters most.",
    "I'm bored. What would make today more fun for you?",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and symbols ! ? . , ; : - ( ) ' \" 😊",
]


def build_local_tiny_llama(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    import torch

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  unk_token="<|endoftext|>", pad_token="<|im_end|>")
    tok.chat_template = CHATML
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llama")
    try:
        from tests.support.tiny_llama import build_tiny_llama
    except ImportError:
        return build_local_tiny_llama(path)
    result = build_tiny_llama(path)
    return Path(result) if result is not None else path


TIM_PROMPT = "You are TIM, a kind tutor."


def tutor_conversations(n: int = 24) -> list[dict]:
    pairs = [
        ("What is photosynthesis?", "Plants turn light, water and carbon dioxide into sugar."),
        ("Can you help me with fractions?", "Of course! A fraction is a part of a whole."),
        ("Why is the sky blue?", "Sunlight scatters off the air, and blue scatters most."),
        ("I'm bored.", "What would make today more fun for you?"),
    ]
    out = []
    for i in range(n):
        q1, a1 = pairs[i % len(pairs)]
        q2, a2 = pairs[(i + 1) % len(pairs)]
        out.append({"messages": [
            {"role": "system", "content": TIM_PROMPT},
            {"role": "user", "content": q1}, {"role": "assistant", "content": a1},
            {"role": "user", "content": q2}, {"role": "assistant", "content": a2},
        ]})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_dataset(data_dir: Path, persona: str, version: str, train: list[dict], val: list[dict]) -> Path:
    folder = Path(data_dir) / "datasets" / persona / version
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "val.jsonl", val)
    (folder / "manifest.json").write_text(json.dumps({"persona": persona, "version": version,
                                                      "counts": {"train": len(train), "val": len(val)}}))
    return folder
