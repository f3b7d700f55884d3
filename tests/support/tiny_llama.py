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
