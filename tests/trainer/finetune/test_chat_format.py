"""The assistant-only mask: built from the serving chat template, EOS after each turn, checked."""
from __future__ import annotations

import pytest

from tests.trainer.finetune.conftest import TIM_PROMPT, write_jsonl
from trainer.finetune.chat_format import (
    IGNORE_INDEX, DatasetFormatError, MaskError, encode_conversation, encode_dataset, encode_jsonl, normalise_messages,
    read_jsonl,
)


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def masked_text(tok, row) -> str:
    return tok.decode([t for t, l in zip(row.input_ids, row.labels) if l != IGNORE_INDEX], skip_special_tokens=False)


def runs(row) -> list[list[int]]:
    """Contiguous runs of labelled tokens."""
    out, cur = [], []
    for t, l in zip(row.input_ids, row.labels):
        if l != IGNORE_INDEX:
            cur.append(t)
        elif cur:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


CONVO = [
    {"role": "system", "content": "an old prompt"},
    {"role": "assistant", "content": "I open the chat."},   # dropped: serving never starts with the persona
    {"role": "user", "content": "hi"},
    {"role": "user", "content": "are you there?"},          # merged like render_turns
    {"role": "assistant", "content": "Hello! 😊\nYes."},
    {"role": "user", "content": "shh"},
    {"role": "assistant", "content": ""},                    # deliberate silence: EOS only
    {"role": "user", "content": "what's 2+2?"},
    {"role": "assistant", "content": "five", "weight": 0},   # context, not trained
    {"role": "user", "content": "really?"},
    {"role": "assistant", "content": "Four, sorry!"},
    {"role": "user", "content": "ok bye"},                   # trailing user turn: nothing to learn
]


def test_masked_tokens_decode_to_assistant_turns_plus_eos(tok):
    [row] = encode_conversation(tok, CONVO, system_prompt=TIM_PROMPT, max_length=4096)
    eos = tok.eos_token
    assert [tok.decode(r) for r in runs(row)] == ["Hello! 😊\nYes." + eos, eos, "Four, sorry!" + eos]
    assert masked_text(tok, row) == "Hello! 😊\nYes." + eos + eos + "Four, sorry!" + eos
    # The full text is exactly what serving's template renders, with the persona's system prompt.
    msgs, replaced = normalise_messages(CONVO, TIM_PROMPT)
    assert replaced
    plain = [{"role": m["role"], "content": m["content"]} for m in msgs]
    assert tok.decode(row.input_ids) == tok.apply_chat_template(plain, tokenize=False)
    assert plain[0] == {"role": "system", "content": TIM_PROMPT}
    assert plain[1] == {"role": "user", "content": "hi\nare you there?"}
    assert plain[-1]["role"] == "assistant"
    assert len(row.labels) == len(row.input_ids)


def test_rendering_matches_serving_prompt_builder(tok):
    from bot.engine.prompt import build_messages
    from bot.engine.types import Turn

    history = [Turn("u1", "Ana", "hi"), Turn("u1", "Ana", "there"), Turn("bot", "TIM", "Hello!", from_persona=True),
               Turn("u1", "Ana", "thanks")]
    serving, _ = build_messages(TIM_PROMPT, history, budget=10_000)
    ours, _ = normalise_messages([{"role": "user", "content": "hi"}, {"role": "user", "content": "there"},
                                  {"role": "assistant", "content": "Hello!"}], TIM_PROMPT)
    assert [{"role": m["role"], "content": m["content"]} for m in ours] == serving[:3]


def test_dataset_policy_keeps_own_system_prompt(tok):
    [row] = encode_conversation(tok, CONVO, system_prompt=None, max_length=4096)
    assert tok.decode(row.input_ids).startswith("<|im_start|>system\nan old prompt<|im_end|>")


def test_long_conversations_split_by_exchange(tok):
    convo = [{"role": "system", "content": TIM_PROMPT}]
    for i in range(6):
        convo += [{"role": "user", "content": f"question {i} about plants?"},
                  {"role": "assistant", "content": f"Answer {i}: plants use light."}]
    [whole] = encode_conversation(tok, convo, system_prompt=TIM_PROMPT, max_length=4096)
    limit = len(whole) // 2
    rows = encode_conversation(tok, convo, system_prompt=TIM_PROMPT, max_length=limit)
    assert len(rows) >= 2 and all(len(r) <= limit for r in rows)
    assert "".join(masked_text(tok, r) for r in rows) == masked_text(tok, whole)
    for r in rows:
        assert tok.decode(r.input_ids).startswith(f"<|im_start|>system\n{TIM_PROMPT}<|im_end|>\n<|im_start|>user\n")


def test_empty_mask_fails_loudly(tok):
    only_context = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey", "weight": 0}]
    no_assistant = [{"role": "user", "content": "hi"}]
    with pytest.raises(MaskError, match="mask is empty"):
        encode_dataset(tok, [("a:1", only_context), ("a:2", no_assistant)], system_prompt=TIM_PROMPT, max_length=512)
    too_long = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    with pytest.raises(MaskError, match="mask is empty"):
        encode_dataset(tok, [("a:3", too_long)], system_prompt=TIM_PROMPT, max_length=64)


def test_template_without_eos_gets_eos_added(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tok.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
                         "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    rows, stats = encode_dataset(tok, [("x:1", CONVO)], system_prompt=TIM_PROMPT, max_length=4096)
    assert stats.eos_inserted
    assert masked_text(tok, rows[0]) == "Hello! 😊\nYes." + tok.eos_token + tok.eos_token + "Four, sorry!" + tok.eos_token


def test_template_that_rewrites_history_is_refused(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    # Shows only the last assistant turn in full (like templates that strip earlier reasoning).
    tok.chat_template = ("{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}{{ 'assistant: ...\n' }}"
                         "{% else %}{{ m['role'] + ': ' + m['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
                         "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    with pytest.raises(MaskError, match="prefix-stable"):
        encode_dataset(tok, [("x:1", CONVO)], system_prompt=TIM_PROMPT, max_length=4096)


def test_bad_records_name_file_and_line(tmp_path, tok):
    path = tmp_path / "train.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                    '{"messages": [{"role": "robot", "content": "hi"}]}\n', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"train.jsonl:2: messages\[0\]: role"):
        read_jsonl(path)
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"train.jsonl:1: not valid JSON"):
        read_jsonl(path)
    good = write_jsonl(tmp_path / "ok.jsonl", [{"messages": CONVO}])
    rows, stats = encode_jsonl(tok, good, system_prompt=TIM_PROMPT, max_length=4096)
    assert stats.assistant_turns == 3 and stats.silent_turns == 1 and stats.system_prompt_replaced == 1
    assert rows[0].source.endswith("ok.jsonl:1")
