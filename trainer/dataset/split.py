"""Train/validation split by session and time, deterministic and leak-free.

Whole sessions are assigned, never single windows, so no window of a validation conversation can
land in train. Dated sessions: the newest `val_fraction` of them (by their last message; key as a
tie-break) go to validation. Undated sessions (JSONL/CSV/synthetic without times) are assigned by
a stable hash of their key. With at least two sessions, validation gets at least one.
Near-duplicates of validation windows are removed from train by the builder (dedup runs on
validation first).
"""
from __future__ import annotations

import hashlib
import math

from trainer.dataset.sessions import Session


def _bucket(key: str) -> float:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") / 2**64


def assign_splits(sessions: list[Session], val_fraction: float) -> None:
    """Set `session.split` to 'train' or 'val' in place."""
    for s in sessions:
        s.split = "train"
    if val_fraction <= 0 or len(sessions) < 2:
        return
    dated = sorted((s for s in sessions if s.end is not None), key=lambda s: (s.end, s.key))
    undated = [s for s in sessions if s.end is None]
    n_val = math.ceil(len(dated) * val_fraction) if dated else 0
    for s in dated[len(dated) - n_val:] if n_val else []:
        s.split = "val"
    for s in undated:
        if _bucket(s.key) < val_fraction:
            s.split = "val"
    if not any(s.split == "val" for s in sessions):
        # Tiny inputs: still hold one session out, the newest (or the last by key).
        pick = dated[-1] if dated else max(undated, key=lambda s: s.key)
        pick.split = "val"
