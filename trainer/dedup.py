"""Exact and near-duplicate detection for training examples: MinHash over word shingles with LSH
banding, computed with numpy in datasketch's scheme, and an exact check of every candidate.

`Deduplicator.is_new(text)` answers whether a text is new, remembering it if so:
- exact duplicates by a hash of the normalised text (case and punctuation ignored);
- near duplicates: word 3-shingles are hashed (32-bit; a word's hash combined over the shingle),
  MinHash signatures are computed in datasketch's 'affine32' scheme (MurmurHash3 finaliser, then
  h -> a*h + b mod 2^32 with datasketch's permutations for the seed: `tests/trainer/test_dedup.py`
  checks the values against `datasketch.MinHash` and the candidates against `MinHashLSH`, whose
  version `pyproject.toml` pins), banded as `MinHashLSH` bands them for the threshold and the
  (false positive, false negative) weights, and every candidate that shares a band is confirmed
  by the exact Jaccard similarity of the two shingle sets.

The weights favour recall: with datasketch's default (0.5, 0.5) at threshold 0.85 and 64
permutations (5 bands of 12 rows), a pair of 0.90 similarity shares a band only about 60% of the
time; with (0.05, 0.95) (8 bands of 8 rows) about 99%, and the exact check turns away the extra
candidates below the threshold (numbers: bench/RESULTS.md, "Near-duplicates").

`is_new_many` / `check_many` give the same answers as `is_new` on each text in turn, but find the
words of every text once and compute the whole batch's signatures with numpy at once, which is
what makes this affordable on 100k+ examples. Deterministic for a given seed; used by dataset
building and by synthetic generation so both drop the same things for the same reasons.
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


@functools.lru_cache(maxsize=None)
def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows per band) for a MinHash LSH index: the pair datasketch's `MinHashLSH` picks, the one
    minimising the weighted sum of the false-positive and false-negative probability mass
    (the integrals of P(candidate | s) = 1 - (1 - s^r)^b below and above the threshold).

    Those integrands are polynomials of degree b*r <= num_perm, so Gauss-Legendre quadrature with
    num_perm/2 + 1 nodes computes them exactly, without datasketch's scipy (slow to import). Should
    the best two pairs ever come within 1e-9 of each other, datasketch itself decides the tie."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be in [0.0, 1.0]")
    if num_perm < 2:
        raise ValueError("Too few permutation functions")
    if abs(sum(weights) - 1.0) > 1e-9:
        raise ValueError("Weights must sum to 1.0")
    nodes, quadrature = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b = np.array([p[0] for p in pairs], dtype=np.float64)[:, None]
    r = np.array([p[1] for p in pairs], dtype=np.float64)[:, None]

    def integral(lo: float, hi: float, false_negative: bool) -> np.ndarray:
        s = (hi - lo) / 2 * nodes[None, :] + (hi + lo) / 2
        p = 1 - (1 - s ** r) ** b
        return ((1 - p) if false_negative else p) @ quadrature * (hi - lo) / 2

    error = integral(0.0, threshold, False) * weights[0] + integral(threshold, 1.0, True) * weights[1]
    order = np.argsort(error, kind="stable")
    if len(order) > 1 and error[order[1]] - error[order[0]] < 1e-9:
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
        return lsh.b, lsh.r
    bands, rows = pairs[int(order[0])]
    if bands < 2:
        raise ValueError("The number of bands are too small (b < 2)")
    return bands, rows


# MurmurHash3's 32-bit finaliser, as datasketch applies it before the affine permutations.
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)


def fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _FMIX32
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(s1))
        h = h * np.uint32(m1)
        h = h ^ (h >> np.uint32(s2))
        h = h * np.uint32(m2)
        return h ^ (h >> np.uint32(s3))


class Deduplicator:
    """Remembers texts; `is_new` is False for exact or near (Jaccard >= threshold) duplicates."""

    def __init__(self, threshold: float = 0.85, num_perm: int = 64, shingle_size: int = 3, seed: int = 1,
                 weights: tuple[float, float] = (0.05, 0.95)):
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        self._exact: dict[bytes, int] = {}     # normalised-text hash -> index of the text first seen
        self.last_match: int | None = None     # index of the remembered text the last duplicate matched
        # LSH banding: b bands of r rows, as datasketch's MinHashLSH chooses them for the threshold and
        # weights. Band buckets map band bytes -> the remembered text(s) with that band; a query's
        # candidates are the texts sharing at least one band (what MinHashLSH.query returns).
        self.bands, self.rows = lsh_params(threshold, num_perm, weights)
        self._bands = [(4 * i * self.rows, 4 * (i + 1) * self.rows) for i in range(self.bands)]   # byte offsets (uint32)
        self._buckets: list[dict[bytes, int | list[int]]] = [{} for _ in self._bands]
        self._shingle_sets: list[np.ndarray | None] = []     # shingle hashes per remembered text
        self._count = 0
        self.exact_duplicates = 0
        self.near_duplicates = 0
        self.candidates_checked = 0
        rng = np.random.RandomState(seed)
        # datasketch's 'affine32' permutations h -> a*h + b mod 2^32 (odd a), drawn the same way.
        self._a = rng.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self._b = rng.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        self._word_ids: dict[str, int] = {}

    # -- signatures ----------------------------------------------------------------------------
    def _word_hash(self, word: str) -> int:
        h = self._word_ids.get(word)
        if h is None:
            h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4, salt=self.seed.to_bytes(8, "little")).digest(), "little")
            if len(self._word_ids) < 2_000_000:      # bounded cache: vocabularies are small, but be safe
                self._word_ids[word] = h
        return h

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
        for size, end in zip(lengths.tolist(), ends.tolist()):
            begin = end - size
            if size == 0:
                out.append(np.empty(0, dtype=np.uint32))
            elif size <= k:
                out.append(np.array([self._short_shingle(w[begin:end])], dtype=np.uint32))
            else:
                out.append(h[begin : end - k + 1])
        return out

    def shingle_hashes(self, text: str) -> np.ndarray:
        """The 32-bit shingle hashes of one text (what the signature is computed over)."""
        return self._shingles_of([_WORD.findall(text.lower())])[0]

    def signatures(self, texts: list[str]) -> list[np.ndarray | None]:
        """MinHash values (uint32, datasketch's 'affine32' hash values) per text; None for texts without words."""
        return self._signatures_of(self._shingles_of([_WORD.findall(t.lower()) for t in texts]))

    def _signatures_of(self, parts: list[np.ndarray]) -> list[np.ndarray | None]:
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
            allh = fmix32(np.concatenate([parts[i] for i in chunk]))
            with np.errstate(over="ignore"):
                perm = a * allh[None, :]
                perm += b
            starts = np.concatenate(([0], np.cumsum(lengths[chunk])[:-1]))
            mins = np.ascontiguousarray(np.minimum.reduceat(perm, starts, axis=1).T)     # one row per text
            for row, i in enumerate(chunk):
                out[i] = mins[row]
            if idx is not None:
                chunk, size = [idx], int(lengths[idx])
        return out

    # -- membership ----------------------------------------------------------------------------
    def _similar(self, shingles: np.ndarray, index: int) -> bool:
        """Whether the exact Jaccard similarity of `shingles` and remembered text `index` reaches the threshold."""
        other = self._shingle_sets[index]
        if other is None:
            return False
        self.candidates_checked += 1
        a, b = np.unique(shingles), np.unique(other)
        common = len(np.intersect1d(a, b, assume_unique=True))
        return common >= self.threshold * (len(a) + len(b) - common)

    def _check(self, values: np.ndarray | None, shingles: np.ndarray, normalised: str) -> bool:
        key = hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).digest()
        seen = self._exact.get(key)
        if seen is not None:
            self.exact_duplicates += 1
            self.last_match = seen
            return False
        if values is not None:
            raw = values.tobytes()
            bands = [raw[start:end] for start, end in self._bands]
            hits = [h for h in map(dict.get, self._buckets, bands) if h is not None]
            if hits:
                candidates = sorted({i for h in hits for i in ((h,) if type(h) is int else h)})
                match = next((i for i in candidates if self._similar(shingles, i)), None)
                if match is not None:
                    self.near_duplicates += 1
                    self.last_match = match
                    return False
            count = self._count
            for bucket, band in zip(self._buckets, bands):
                # A band's first text is kept as a plain int: most bands are never shared.
                held = bucket.setdefault(band, count)
                if held is not count:
                    if type(held) is int:
                        bucket[band] = [held, count]
                    else:
                        held.append(count)
        # A view into the batch's shingle array: the exact check reads it only for LSH candidates.
        self._shingle_sets.append(None if values is None else shingles)
        self._exact[key] = self._count
        self._count += 1
        self.last_match = None
        return True

    def _checked(self, texts: list[str]):
        """(signature, shingle hashes, normalised text) per text: the words of each text are found once."""
        word_lists = [_WORD.findall(t.lower()) for t in texts]
        parts = self._shingles_of(word_lists)
        return zip(self._signatures_of(parts), parts, [" ".join(ws) for ws in word_lists])

    def __len__(self) -> int:
        return self._count

    def is_new(self, text: str) -> bool:
        return self.is_new_many([text])[0]

    def is_new_many(self, texts: list[str]) -> list[bool]:
        """`[is_new(t) for t in texts]`, with the signatures computed in one vectorised pass."""
        return [self._check(v, p, n) for v, p, n in self._checked(texts)]

    def check_many(self, texts: list[str]) -> list[int | None]:
        """Like `is_new_many`, but per text: None when new, else the index of the remembered text it duplicates."""
        return [None if self._check(v, p, n) else self.last_match for v, p, n in self._checked(texts)]
