"""Local LoRA on a tiny random Llama: the loss falls, only LoRA weights move, packing is contamination-free,
an interrupted run resumes from its checkpoint."""
from __future__ import annotations

import json

import pytest

from bot.persona.training import TrainingSpec
from tests.trainer.finetune.conftest import TIM_PROMPT, tutor_conversations, write_dataset
from trainer.finetune.config import resolve
from trainer.finetune.lora import TrainingInterrupted, last_checkpoint, train_lora

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_config(**kw):
    spec = dict(rank=8, alpha=16, dropout=0.0, target_modules=ALL_LINEAR, learning_rate=1e-2, batch_size=4,
                max_length=128, logging_steps=1, eval_steps=100, save_steps=100, warmup_ratio=0.0, lr_scheduler="constant")
    spec.update(kw.pop("spec", {}))
    return resolve(TrainingSpec(**spec), device="cpu", **kw)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return write_dataset(root, "tim", "v1", tutor_conversations(16), tutor_conversations(4))


def snapshot_callback():
    from transformers import TrainerCallback

    class Snap(TrainerCallback):
        before: dict = {}
        after: dict = {}

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

        def on_train_end(self, args, state, control, model=None, **kw):
            self.after = {n: p.detach().clone() for n, p in model.named_parameters()}

    return Snap()


def test_tiny_llama_lora_learns_and_only_lora_moves(tiny_model_dir, dataset, tmp_path):
    import torch
    from safetensors.torch import load_file

    snap = snapshot_callback()
    events = []
    result = train_lora(tiny_model_dir, dataset / "train.jsonl", dataset / "val.jsonl", tmp_path / "run", tmp_path / "adapter",
                        tiny_config(max_steps=10), system_prompt=TIM_PROMPT, resume=False, on_log=events.append,
                        callbacks=[snap])
    assert result.global_step == 10
    assert result.train_loss_last < result.train_loss_first - 0.25, (result.train_loss_first, result.train_loss_last)
    assert result.val_loss_final < result.val_loss_base
    assert result.tokens > 0 and result.tokens_per_s > 0

    lora = [n for n in snap.before if "lora_" in n]
    base = [n for n in snap.before if "lora_" not in n]
    assert lora and base
    assert all(not torch.equal(snap.before[n], snap.after[n]) for n in lora if "lora_B" in n)
    assert all(torch.equal(snap.before[n], snap.after[n]) for n in base)

    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert saved and all("lora_" in k for k in saved)
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and set(cfg["target_modules"]) == set(ALL_LINEAR)
    assert (tmp_path / "adapter" / "tokenizer_config.json").is_file()
    steps = [e["step"] for e in events if "loss" in e]
    assert steps == list(range(1, 11))
    assert any("val_loss" in e and e["step"] == 0 for e in events)


def test_packing_keeps_examples_apart(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.finetune.chat_format import encode_dataset
    from trainer.finetune.data import Collator, as_features, pack

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    convos = [(f"t:{i}", c["messages"]) for i, c in enumerate(tutor_conversations(3))]
    convos[1][1][2]["content"] = "A longer answer, so the packed examples differ in length a bit."
    rows, _ = encode_dataset(tok, convos, system_prompt=TIM_PROMPT, max_length=512)
    [packed] = pack(rows, max_length=512)
    collate = Collator(tok.pad_token_id)
    batch = collate([packed])
    assert "attention_mask" not in batch and int(batch.pop("num_real_tokens")) == sum(len(r) for r in rows)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        start = 0
        for r in sorted(rows, key=len, reverse=True):  # pack() places longest first
            alone = model(input_ids=torch.tensor([r.input_ids]), use_cache=False).logits[0]
            torch.testing.assert_close(logits[start:start + len(r)], alone, atol=1e-4, rtol=1e-4)
            start += len(r)
        # Without position resets the second example would see the first: the check above is not vacuous.
        plain = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
        second = sorted(rows, key=len, reverse=True)[0]
        assert not torch.allclose(plain[len(second):len(second) + 5], logits[len(second):len(second) + 5], atol=1e-4)


def test_packed_training_runs(tiny_model_dir, dataset, tmp_path):
    result = train_lora(tiny_model_dir, dataset / "train.jsonl", None, tmp_path / "run", tmp_path / "adapter",
                        tiny_config(max_steps=4, spec={"packing": True, "max_length": 256}), system_prompt=TIM_PROMPT)
    assert result.global_step == 4 and result.train_loss_last < result.train_loss_first


def test_interrupted_run_resumes_from_last_checkpoint(tiny_model_dir, dataset, tmp_path):
    from safetensors.torch import load_file
    import torch

    config = tiny_config(max_steps=6, spec={"save_steps": 2, "dropout": 0.1})
    full = train_lora(tiny_model_dir, dataset / "train.jsonl", None, tmp_path / "a", tmp_path / "a-adapter", config,
                      system_prompt=TIM_PROMPT)
    with pytest.raises(TrainingInterrupted):
        train_lora(tiny_model_dir, dataset / "train.jsonl", None, tmp_path / "b", tmp_path / "b-adapter", config,
                   system_prompt=TIM_PROMPT, stop_at_step=5)
    assert last_checkpoint(tmp_path / "b" / "checkpoints").name == "checkpoint-4"
    assert not (tmp_path / "b-adapter").exists()
    events = []
    resumed = train_lora(tiny_model_dir, dataset / "train.jsonl", None, tmp_path / "b", tmp_path / "b-adapter", config,
                         system_prompt=TIM_PROMPT, on_log=events.append)
    assert resumed.resumed_from == "checkpoint-4" and resumed.global_step == 6
    assert [e["step"] for e in events if "loss" in e] == [5, 6]
    a = load_file(str(tmp_path / "a-adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b-adapter" / "adapter_model.safetensors"))
    for k in a:  # the resumed run ends where the uninterrupted one did
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)

