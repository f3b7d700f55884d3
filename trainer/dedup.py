"""Exact and near-duplicate detection for training examples (datasketch MinHash LSH).

`Deduplicator.is_new(text)` answers whether a text is new, remembering it if so: exact duplicates
are caught by a hash of the normalised text, near-duplicates by MinHash over word shingles with an
LSH index (Jaccard threshold). Deterministic for a given seed; used by dataset building and by
synthetic generation so both drop the same things for the same reasons.

`is_new_many(texts)` gives the same answers as calling `is_new` on each text in turn, but finds the
words of every text once (for both the exact key and the shingles) and computes the MinHash
signatures of the whole batch with numpy at once (word hashes looked up once, shingles combined
arithmetically over all texts, permutations x shingles reduced along contiguous rows), which is
what makes near-dup detection affordable on 100k+ examples. The signatures are datasketch's
(scheme 'affine32', 32-bit values as uint64); the LSH banding is datasketch `MinHashLSH`'s for the
threshold, with its band buckets kept as dicts here (same candidates, none of the per-text objects).
"""
from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=None)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) for a MinHash LSH index: the pair datasketch's `MinHashLSH` picks, the one
    minimising the mean of the false-positive and false-negative probability mass
    (the integrals of P(candidate | s) = 1 - (1 - s^r)^b below and above the threshold).

    Those integrands are polynomials of degree b*r <= num_perm, so Gauss-Legendre quadrature with
    num_perm/2 + 1 nodes computes them exactly, without datasketch's scipy (slow to import). Should
    the best two pairs ever come within 1e-9 of each other, datasketch itself decides the tie."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be in [0.0, 1.0]")
    if num_perm < 2:
        raise ValueError("Too few permutation functions")
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b = np.array([p[0] for p in pairs], dtype=np.float64)[:, None]
    r = np.array([p[1] for p in pairs], dtype=np.float64)[:, None]

    def integral(lo: float, hi: float, false_negative: bool) -> np.ndarray:
        s = (hi - lo) / 2 * nodes[None, :] + (hi + lo) / 2
        p = 1 - (1 - s ** r) ** b
        return ((1 - p) if false_negative else p) @ weights * (hi - lo) / 2

    error = integral(0.0, threshold, False) * 0.5 + integral(threshold, 1.0, True) * 0.5
    order = np.argsort(error, kind="stable")
    if len(order) > 1 and error[order[1]] - error[order[0]] < 1e-9:
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        return lsh.b, lsh.r
    bands, rows = pairs[int(order[0])]
    if bands < 2:
        raise ValueError("The number of bands are too small (b < 2)")
    return bands, rows


class Deduplicator:
    """Remembers texts; `is_new` is False for exact or near (Jaccard ≥ threshold) duplicates."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 64, shingle_size: int = 3, seed: int = 1):
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        self._exact: dict[bytes, int] = {}     # normalised-text hash -> index of the text first seen
        self.last_match: int | None = None     # index of the remembered text the last duplicate matched
        # LSH banding: b bands of r rows, as datasketch's MinHashLSH chooses them for the threshold. The
        # band buckets are plain dicts: band bytes -> the first remembered text with that band. A query's
        # hits are the texts sharing at least one band (what MinHashLSH.query returns), and the lowest of
        # them is the lowest of the per-band firsts, so nothing else needs storing.
        bands, rows = lsh_params(threshold, num_perm)
        self._bands = [(i * rows, (i + 1) * rows) for i in range(bands)]
        self._buckets: list[dict[bytes, int]] = [{} for _ in self._bands]
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
        return self._shingles_of([_WORD.findall(text.lower())])[0]

    def _word_id_array(self, flat: list[str]) -> np.ndarray:
        """The 32-bit hash of every word, in order, as one uint32 array."""
        get = self._word_ids.get
        try:
            return np.fromiter(map(get, flat), dtype=np.uint32, count=len(flat))
        except TypeError:                        # a word not seen before (None)
            pass
        for word in set(flat).difference(self._word_ids):
            self._word_hash(word)
        ids = list(map(get, flat))
        if None in ids:                          # the bounded cache is full: hash the rest one by one
            ids = [v if v is not None else self._word_hash(x) for v, x in zip(ids, flat)]
        return np.array(ids, dtype=np.uint32)

    def _short_shingle(self, w: np.ndarray) -> np.uint32:
        """The one shingle of a text with at most `shingle_size` words."""
        out = w[0]
        for x in w[1:]:
            out = np.uint32((int(out) * 0x01000193) & 0xFFFFFFFF) ^ x
        return out

    def _shingles_of(self, word_lists: list[list[str]]) -> list[np.ndarray]:
        """Shingle hashes per text: an order-sensitive combination of k consecutive word hashes
        (wrapping 32-bit arithmetic); a text of at most k words is one shingle, of no words none.
        Computed over all texts' words at once, then cut per text."""
        k = self.shingle_size
        lengths = np.fromiter((len(ws) for ws in word_lists), dtype=np.int64, count=len(word_lists))
        flat = [w for ws in word_lists for w in ws]
        if not flat:
            return [np.empty(0, dtype=np.uint32) for _ in word_lists]
        w = self._word_id_array(flat)
        n = len(w)
        m = n - k + 1                             # shingle start positions over the concatenation
        h = w[:m].copy() if m > 0 else np.empty(0, dtype=np.uint32)
        with np.errstate(over="ignore"):
            for j in range(1, k):
                h = h * np.uint32(0x01000193) ^ w[j : m + j]
        ends = np.cumsum(lengths)
        out: list[np.ndarray] = []
        for i, (size, end) in enumerate(zip(lengths.tolist(), ends.tolist())):
            begin = end - size
            if size == 0:
                out.append(np.empty(0, dtype=np.uint32))
            elif size <= k:
                out.append(np.array([self._short_shingle(w[begin:end])], dtype=np.uint32))
            else:
                out.append(h[begin : end - k + 1])
        return out

    def signatures(self, texts: list[str]) -> list[np.ndarray | None]:
        """MinHash values (32-bit values as uint64, datasketch's layout) per text; None for texts without words."""
        return self._signatures_of([_WORD.findall(t.lower()) for t in texts])

    def _signatures_of(self, word_lists: list[list[str]]) -> list[np.ndarray | None]:
        parts = self._shingles_of(word_lists)
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        out: list[np.ndarray | None] = [None] * len(parts)
        nonempty = np.nonzero(lengths)[0]
        if len(nonempty) == 0:
            return out
        a = self._a[:, None]
        b = self._b[:, None]
        # Permutations along rows, shingles along columns: the per-text minimum is then a reduction
        # over contiguous memory. Chunks of whole texts keep the matrix to a few MB.
        chunk: list[int] = []
        size = 0
        for idx in nonempty.tolist() + [None]:
            if idx is not None and (not chunk or size + lengths[idx] <= 50_000):
                chunk.append(idx)
                size += int(lengths[idx])
                continue
            allh = np.concatenate([parts[i] for i in chunk])
            with np.errstate(over="ignore"):
                perm = a * allh[None, :]
                perm += b
            starts = np.concatenate(([0], np.cumsum(lengths[chunk])[:-1]))
            mins = np.minimum.reduceat(perm, starts, axis=1).T.astype(np.uint64)
            for row, i in enumerate(chunk):
                out[i] = mins[row]
            if idx is not None:
                chunk, size = [idx], int(lengths[idx])
        return out

    def _minhash(self, text: str):
        return self._as_minhash(self.signatures([text])[0])

    def _as_minhash(self, values: np.ndarray):
        from datasketch import LeanMinHash

        # LeanMinHash: a full MinHash would regenerate its permutation tables per object (slow).
        return LeanMinHash(seed=self.seed, hashvalues=values, scheme="affine32")

    # -- membership ----------------------------------------------------------------------------
    def _check(self, text: str, values: np.ndarray | None, normalised: str | None = None) -> bool:
        if normalised is None:
            normalised = normalise(text)
        key = hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).digest()
        seen = self._exact.get(key)
        if seen is not None:
            self.exact_duplicates += 1
            self.last_match = seen
            return False
        if values is not None:
            bands = [values[start:end].tobytes() for start, end in self._bands]
            hits = [h for h in map(dict.get, self._buckets, bands) if h is not None]
            if hits:
                self.near_duplicates += 1
                self.last_match = min(hits)
                return False
            for bucket, band in zip(self._buckets, bands):
                bucket.setdefault(band, self._count)
        self._exact[key] = self._count
        self._count += 1
        self.last_match = None
        return True

    def _checked(self, texts: list[str]):
        """(text, signature, normalised text) for a batch: the words of each text are found once."""
        word_lists = [_WORD.findall(t.lower()) for t in texts]
        return zip(texts, self._signatures_of(word_lists), [" ".join(ws) for ws in word_lists])

    def __len__(self) -> int:
        return self._count

    def is_new(self, text: str) -> bool:
        return self._check(text, self.signatures([text])[0])

    def is_new_many(self, texts: list[str]) -> list[bool]:
        """`[is_new(t) for t in texts]`, with the signatures computed in one vectorised pass."""
        return [self._check(t, v, n) for t, v, n in self._checked(texts)]

    def check_many(self, texts: list[str]) -> list[int | None]:
        """Like `is_new_many`, but per text: None when new, else the index of the remembered text it duplicates."""
        out = []
        for t, v, n in self._checked(texts):
            out.append(None if self._check(t, v, n) else self.last_match)
        return out
