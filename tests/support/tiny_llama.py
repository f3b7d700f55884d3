"""A tiny random Llama with a real ChatML tokenizer, built offline in about a second.

`build_tiny_llama(path)` writes a complete transformers model folder (config, float32 weights,
tokenizer, chat template) that `AutoModelForCausalLM` / `AutoTokenizer` load like any other. It
needs nothing from the network or from the real SmolLM2 weights, so it works in CI from a fresh
clone:

- the tokenizer is a byte-level BPE trained here with the `tokenizers` library on a small built-in
  English corpus (so it encodes any text, like GPT-2/SmolLM2 tokenizers), with the ChatML special
  tokens `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, EOS = `<|im_end|>` and the same ChatML
  chat template SmolLM2 uses;
- the model is `LlamaForCausalLM` with 2 layers, hidden size 64, 4 heads and the tokenizer's
  vocabulary, initialised from a fixed seed (the same folder content on every run).

Weights are random, so the text it generates is gibberish, but it is deterministic under greedy
decoding and every code path (templates, EOS, stop strings, LoRA, streaming) is real. Training
tests can use it too: a few LoRA steps on it make the loss fall.
"""
from __future__ import annotations

from pathlib import Path

#: Same ChatML template as SmolLM2-Instruct (system turn optional here: no default system prompt,
#: so the tiny model's prompts contain only what the test wrote).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Training text for the tokenizer: enough variety that common words become single tokens.
_CORPUS = """\
You are a compassionate tutor. Explain one idea at a time in plain words.
What is photosynthesis? Plants use light from the sun to turn water and carbon dioxide into sugar.
The learner asked a question about fractions, and the tutor answered with a short example.
Hello! How are you today? I am fine, thank you. Let's talk about the weather and the news.
Can you help me with my homework? Of course, tell me what you already know about it.
The quick brown fox jumps over the lazy dog. A stitch in time saves nine.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024. Symbols: ! ? . , ; : - ( ) [ ] { } " ' / * + = _ #
User: I'm bored. TIM: What would make today more fun for you? EVE: Let's set one small goal.
Energy, light, plant, leaf, water, chemistry, biology, history, music, reading, writing, code.
def hello(name): return f"Hello, {name}!"
Emoji and accents are text too: café, naïve, über, 😊, 👍.
"""


def build_tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE `PreTrainedTokenizerFast` with ChatML specials and template (no network)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        # All 256 byte symbols, so any UTF-8 text encodes without an unknown token.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_llama(path: str | Path, *, seed: int = 0, num_layers: int = 2, hidden_size: int = 64) -> Path:
    """Write a tiny random Llama + ChatML tokenizer to `path` (created if needed); return the path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=eos,
        pad_token_id=eos,
        tie_word_embeddings=False,
    )
    # Fork the RNG so building a model never disturbs the seeding of the test that asked for it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_gguf(path: str | Path, *, seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> Path:
    """Write a tiny random Llama as a float32 `.gguf` file (with the tiny BPE tokenizer); return it.

    It exercises the same GGUF → dense conversion as the real SmolLM2 file in about a second. The
    weights are random, so the q/k row permutation llama.cpp applies does not matter here.
    """
    import json

    import gguf
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    for added in spec.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    special = {tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    n_vocab, heads, inter = len(tokens), 4, hidden_size * 2

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(num_layers)
    writer.add_context_length(4096)
    writer.add_embedding_length(hidden_size)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(hidden_size // heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(n_vocab)])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.convert_tokens_to_ids("<|im_start|>"))
    writer.add_eos_token_id(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    writer.add_pad_token_id(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int) -> None:
        # numpy shapes are (out, in) as in torch; the writer stores them in GGUF's reversed order.
        data = np.ones(shape, np.float32) if len(shape) == 1 else rng.normal(0, 0.02, shape).astype(np.float32)
        writer.add_tensor(name, data)

    tensor("token_embd.weight", n_vocab, hidden_size)
    for i in range(num_layers):
        tensor(f"blk.{i}.attn_norm.weight", hidden_size)
        for proj in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{proj}.weight", hidden_size, hidden_size)
        tensor(f"blk.{i}.ffn_norm.weight", hidden_size)
        tensor(f"blk.{i}.ffn_gate.weight", inter, hidden_size)
        tensor(f"blk.{i}.ffn_up.weight", inter, hidden_size)
        tensor(f"blk.{i}.ffn_down.weight", hidden_size, inter)
    tensor("output_norm.weight", hidden_size)
    tensor("output.weight", n_vocab, hidden_size)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
