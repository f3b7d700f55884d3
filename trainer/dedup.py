"""Exact and near-duplicate detection for training examples (datasketch MinHash LSH).

`Deduplicator.is_new(text)` answers whether a text is new, remembering it if so: exact duplicates
are caught by a hash of the normalised text, near-duplicates by MinHash over word shingles with an
LSH index (Jaccard threshold). Deterministic for a given seed; used by dataset building and by
synthetic generation so both drop the same things for the same reasons.

`is_new_many(texts)` gives the same answers as calling `is_new` on each text in turn, but computes
the MinHash signatures of the whole batch with numpy at once (words hashed once each, shingles
combined arithmetically), which is what makes near-dup detection affordable on 100k+ examples.
The signatures are datasketch `MinHash` objects (scheme 'affine32', 32-bit values) in a datasketch
`MinHashLSH`; only the way they are computed is vectorised.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK32 = np.uint64(0xFFFFFFFF)


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
        self._exact: dict[bytes, int] = {}     # normalised-text hash -> index of the text first seen
        self.last_match: int | None = None     # index of the remembered text the last duplicate matched
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._count = 0
        self.exact_duplicates = 0
        self.near_duplicates = 0
        rng = np.random.RandomState(seed)
        # Permutations h_i(x) = (a_i * x + b_i) mod 2^32 with odd a_i, in uint32 (half the memory
        # traffic of 64-bit); shingle hashes are already well mixed, so this family is adequate.
        self._a = (rng.randint(0, 2**31, size=num_perm, dtype=np.int64).astype(np.uint32) * np.uint32(2) + np.uint32(1))
        self._b = rng.randint(0, 2**32, size=num_perm, dtype=np.int64).astype(np.uint32)
        self._word_ids: dict[str, int] = {}

    # -- signatures ----------------------------------------------------------------------------
    def _word_hash(self, word: str) -> int:
        h = self._word_ids.get(word)
        if h is None:
            h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4, salt=self.seed.to_bytes(8, "little")).digest(), "little")
            if len(self._word_ids) < 2_000_000:      # bounded cache: vocabularies are small, but be safe
                self._word_ids[word] = h
        return h

    def _shingle_hashes(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        if not words:
            return np.empty(0, dtype=np.uint32)
        ids = list(map(self._word_ids.get, words))
        if None in ids:
            ids = [v if v is not None else self._word_hash(x) for v, x in zip(ids, words)]
        w = np.array(ids, dtype=np.uint32)
        k = self.shingle_size
        if len(w) <= k:
            out = w[0]
            for x in w[1:]:
                out = np.uint32((int(out) * 0x01000193) & 0xFFFFFFFF) ^ x
            return np.array([out], dtype=np.uint32)
        # Order-sensitive combination of k consecutive word hashes (wrapping 64-bit arithmetic).
        h = w[: len(w) - k + 1].copy()
        with np.errstate(over="ignore"):
            for j in range(1, k):
                h = h * np.uint32(0x01000193) ^ w[j : len(w) - k + 1 + j]
        return h

    def signatures(self, texts: list[str]) -> list[np.ndarray | None]:
        """MinHash values (32-bit values as uint64, datasketch's layout) per text; None for texts without words."""
        parts = [self._shingle_hashes(t) for t in texts]
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        out: list[np.ndarray | None] = [None] * len(texts)
        nonempty = np.nonzero(lengths)[0]
        if len(nonempty) == 0:
            return out
        # Process in chunks so the (shingles x num_perm) matrix stays a few tens of MB.
        chunk: list[int] = []
        size = 0
        for idx in list(nonempty) + [None]:
            if idx is not None and size + lengths[idx] <= 200_000:
                chunk.append(idx)
                size += int(lengths[idx])
                continue
            if chunk:
                allh = np.concatenate([parts[i] for i in chunk])
                with np.errstate(over="ignore"):
                    perm = allh[:, None] * self._a[None, :] + self._b[None, :]
                starts = np.concatenate(([0], np.cumsum(lengths[chunk])[:-1]))
                mins = np.minimum.reduceat(perm, starts, axis=0)
                for row, i in enumerate(chunk):
                    out[i] = mins[row].astype(np.uint64)
            if idx is not None:
                chunk, size = [idx], int(lengths[idx])
            else:
                chunk = []
        return out

    def _minhash(self, text: str):
        return self._as_minhash(self.signatures([text])[0])

    def _as_minhash(self, values: np.ndarray):
        from datasketch import LeanMinHash

        # LeanMinHash: a full MinHash would regenerate its permutation tables per object (slow).
        return LeanMinHash(seed=self.seed, hashvalues=values, scheme="affine32")

    # -- membership ----------------------------------------------------------------------------
    def _check(self, text: str, values: np.ndarray | None) -> bool:
        key = hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=16).digest()
        seen = self._exact.get(key)
        if seen is not None:
            self.exact_duplicates += 1
            self.last_match = seen
            return False
        if values is not None:
            m = self._as_minhash(values)
            hits = self._lsh.query(m)
            if hits:
                self.near_duplicates += 1
                self.last_match = min(int(h) for h in hits)
                return False
            self._lsh.insert(str(self._count), m)
        self._exact[key] = self._count
        self._count += 1
        self.last_match = None
        return True

    def __len__(self) -> int:
        return self._count

    def is_new(self, text: str) -> bool:
        return self._check(text, self.signatures([text])[0])

    def is_new_many(self, texts: list[str]) -> list[bool]:
        """`[is_new(t) for t in texts]`, with the signatures computed in one vectorised pass."""
        return [self._check(t, v) for t, v in zip(texts, self.signatures(texts))]

    def check_many(self, texts: list[str]) -> list[int | None]:
        """Like `is_new_many`, but per text: None when new, else the index of the remembered text it duplicates."""
        out = []
        for t, v in zip(texts, self.signatures(texts)):
            out.append(None if self._check(t, v) else self.last_match)
        return out
