"""Exact and near-duplicate detection for training examples (datasketch MinHash LSH).

`Deduplicator.is_new(text)` answers whether a text is new, remembering it if so: exact duplicates
are caught by a hash of the normalised text, near-duplicates by MinHash over word shingles with an
LSH index (Jaccard threshold). Deterministic for a given seed; used by dataset building and by
synthetic generation so both drop the same things for the same reasons.
"""
from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form used for exact matching."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, size: int = 3) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + size]).encode("utf-8") for i in range(len(words) - size + 1)}


class Deduplicator:
    """Remembers texts; `is_new` is False for exact or near (Jaccard ≥ threshold) duplicates."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 64, shingle_size: int = 3, seed: int = 1):
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        self._exact: set[bytes] = set()
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._count = 0
        self.exact_duplicates = 0
        self.near_duplicates = 0

    def _minhash(self, text: str):
        from datasketch import MinHash

        m = MinHash(num_perm=self.num_perm, seed=self.seed)
        m.update_batch(list(shingles(text, self.shingle_size)))
        return m

    def is_new(self, text: str) -> bool:
        key = hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=16).digest()
        if key in self._exact:
            self.exact_duplicates += 1
            return False
        grams = shingles(text, self.shingle_size)
        if grams:
            m = self._minhash(text)
            if self._lsh.query(m):
                self.near_duplicates += 1
                return False
            self._lsh.insert(str(self._count), m)
        self._exact.add(key)
        self._count += 1
        return True
