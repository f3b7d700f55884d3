"""Training rows → batches: padding, optional packing without cross-example contamination.

Packing puts several encoded examples into one row of at most `max_length` tokens. Each example
keeps its own `position_ids` (restarting at 0) and the batch carries no 2-D attention mask, so
transformers builds a block-diagonal causal mask from the position resets: tokens attend only
within their own example, and RoPE positions are the ones the example would have alone. Labels
need no separator: every example starts with unlabelled system/user tokens, so the shifted loss
never asks one example to predict the next one's first token.

Each batch also carries `num_real_tokens` (non-padding tokens) for tokens/s; the trainer pops it
before the forward pass.
"""
from __future__ import annotations

from typing import Sequence

from trainer.finetune.chat_format import IGNORE_INDEX, Encoded


def as_features(rows: Sequence[Encoded]) -> list[dict]:
    return [{"input_ids": r.input_ids, "labels": r.labels} for r in rows]


def pack(rows: Sequence[Encoded], max_length: int) -> list[dict]:
    """First-fit-decreasing packing into rows of at most `max_length` tokens, with per-example positions."""
    bins: list[dict] = []
    for r in sorted(rows, key=len, reverse=True):
        n = len(r)
        if n > max_length:
            raise ValueError(f"{r.source}: example of {n} tokens is longer than max_length={max_length}")
        for b in bins:
            if len(b["input_ids"]) + n <= max_length:
                break
        else:
            b = {"input_ids": [], "labels": [], "position_ids": []}
            bins.append(b)
        b["input_ids"].extend(r.input_ids)
        b["labels"].extend(r.labels)
        b["position_ids"].extend(range(n))
    return bins


class Collator:
    """Right-pads a list of features into tensors (`labels` padded with -100)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        packed = "position_ids" in features[0]
        ids, labels, extra = [], [], []
        real = 0
        for f in features:
            n = len(f["input_ids"])
            gap = longest - n
            real += n
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * gap)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * gap)
            if packed:
                # Padding becomes one more "example" of its own (positions restart), fully masked out of the loss.
                extra.append(list(f["position_ids"]) + list(range(gap)))
            else:
                extra.append([1] * n + [0] * gap)
        batch = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "num_real_tokens": torch.tensor(real, dtype=torch.long),
        }
        batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra, dtype=torch.long)
        return batch


class ListDataset:
    """A map-style dataset over a list of feature dicts (what `Trainer` and its length-grouped sampler expect)."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]
