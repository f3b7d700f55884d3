"""Held-out loss: the mean cross-entropy over assistant tokens (content + EOS) of a validation set.

The evaluation gate compares this number for the base model, the active version and a candidate,
so it is computed exactly the way training computes its loss: the same chat template, system prompt
policy and assistant-only mask (`chat_format`), token-weighted over the whole file (not a mean of
per-batch means, which would over-weight short batches).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from trainer.finetune.chat_format import IGNORE_INDEX, Encoded, encode_jsonl


def mean_assistant_loss(model, rows: Sequence[Encoded], *, pad_token_id: int, batch_size: int = 8) -> float:
    """Token-weighted mean loss of `model` over the labelled tokens of `rows` (no gradient)."""
    import torch

    from trainer.finetune.data import Collator, as_features

    collate = Collator(pad_token_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    ordered = sorted(rows, key=len)  # similar lengths together: less padding
    try:
        with torch.no_grad():
            for i in range(0, len(ordered), batch_size):
                batch = collate(as_features(ordered[i : i + batch_size]))
                batch.pop("num_real_tokens")
                labels = batch.pop("labels").to(device)
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = model(**batch, use_cache=False).logits.float()
                shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
                shift_labels = labels[:, 1:].reshape(-1)
                loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="sum")
                total += float(loss)
                count += int((shift_labels != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    if count == 0:
        return math.nan
    return total / count


def evaluate_loss(
    model_dir: str | Path,
    adapter_dir: str | Path | None,
    val_jsonl: str | Path,
    *,
    system_prompt: str | None,
    max_length: int = 1024,
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "auto",
    model=None,
    tokenizer=None,
) -> float:
    """Mean assistant-token loss of a base model (plus optional LoRA adapter) on a validation JSONL.

    `system_prompt`: the persona's system prompt (what serving sends), or None to keep each example's
    own system message. Pass an already loaded `model`/`tokenizer` to skip loading. The tokenizer is
    read from the adapter folder when it has one (training saves it there), else from the base.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.finetune.config import detect_device

    device = detect_device(device)
    if tokenizer is None:
        source = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() else model_dir
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    if model is None:
        torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(
            dtype, torch.bfloat16 if device == "cuda" else torch.float32)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype).to(device)
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir))
    rows, _ = encode_jsonl(tokenizer, Path(val_jsonl), system_prompt=system_prompt, max_length=max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return mean_assistant_loss(model, rows, pad_token_id=pad, batch_size=batch_size)
