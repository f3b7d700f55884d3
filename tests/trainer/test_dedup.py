"""The deduplicator: exact and near duplicates, batch = sequential, determinism, the same signatures
and candidates as datasketch, and recall at 0.90 similarity."""
from __future__ import annotations

import random

import numpy as np

from trainer.dedup import Deduplicator, lsh_params, normalise

BASE = "we should meet at the old harbour cafe on friday evening and bring the maps for the long hike on sunday morning"


def test_exact_near_and_distinct():
    d = Deduplicator()
    assert d.is_new(BASE)
    assert not d.is_new(BASE.upper() + "  ")                    # exact after normalisation
    assert d.last_match == 0
    assert not d.is_new(BASE + " ok")                             # near duplicate
    assert d.is_new("completely unrelated words about cooking pasta with garlic and olive oil tonight")
    assert (d.exact_duplicates, d.near_duplicates, len(d)) == (1, 1, 2)
    assert normalise("Hi,  THERE!") == "hi there"


def test_batch_matches_sequential_and_is_deterministic():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choices(words, k=40)) for _ in range(200)]
    texts += [t + " extra" for t in texts[:20]] + texts[:10] + ["", "!!!"]
    seq = Deduplicator()
    expected = [seq.is_new(t) for t in texts]
    assert Deduplicator().is_new_many(texts) == expected
    assert Deduplicator().check_many(texts)[200:210] == list(range(20))[:10]
    assert sum(expected) == 200 + 1 + 0       # originals, one of ""/"!!!" (they normalise the same)


def test_lsh_params_match_datasketch():
    """The banding is chosen without scipy; it must be the pair datasketch's MinHashLSH would use
    (or the same refusal, when no banding of at least two bands fits)."""
    from datasketch import MinHashLSH

    def outcome(make):
        try:
            return make()
        except ValueError as exc:
            return str(exc)

    for num_perm in (16, 64, 128):
        for threshold in (0.0, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.5):
            theirs = outcome(lambda: (lambda lsh: (lsh.b, lsh.r))(MinHashLSH(threshold=threshold, num_perm=num_perm)))
            assert outcome(lambda: lsh_params(threshold, num_perm)) == theirs, (threshold, num_perm)

    for weights in ((0.05, 0.95), (0.2, 0.8), (0.9, 0.1)):
        assert lsh_params(0.85, 64, weights) == (lambda lsh: (lsh.b, lsh.r))(MinHashLSH(threshold=0.85, num_perm=64, weights=weights))


def _texts(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choices(words, k=rng.randint(3, 60))) for _ in range(n)]
    near = []
    for t in base[: n // 4]:                 # edited copies: some near, some not
        ws = t.split()
        for _ in range(rng.randint(1, 4)):
            ws[rng.randrange(len(ws))] = rng.choice(words)
        near.append(" ".join(ws))
    return base + near


def test_signatures_and_candidates_equal_datasketch():
    """The numpy MinHash is datasketch's MinHash ('affine32', same seed) over the same shingle
    hashes, and the band buckets give exactly MinHashLSH's candidates."""
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    texts = _texts(300)
    d = Deduplicator(threshold=0.85, num_perm=64, seed=1, weights=(0.05, 0.95))
    ours = d.signatures(texts)
    lsh = MinHashLSH(threshold=0.85, num_perm=64, weights=(0.05, 0.95))
    assert (lsh.b, lsh.r) == (d.bands, d.rows) == (8, 8)
    theirs = []
    for i, t in enumerate(texts):
        m = MinHash(num_perm=64, seed=1, scheme="affine32", hashfunc=int)
        m.update_batch(d.shingle_hashes(t).tolist())
        assert np.array_equal(m.hashvalues, ours[i]), i
        lean = LeanMinHash(m)
        theirs.append({j for j in lsh.query(lean)})
        lsh.insert(i, lean)
    # Candidates by our banding: the earlier texts sharing a band.
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for i, sig in enumerate(ours):
        mine = set()
        for band in range(d.bands):
            key = (band, sig[band * d.rows:(band + 1) * d.rows].tobytes())
            mine.update(buckets.get(key, []))
            buckets.setdefault(key, []).append(i)
        assert mine == theirs[i], i
    assert sum(1 for c in theirs if c) >= 20          # the comparison covered real candidates


def _jaccard(d: Deduplicator, a: str, b: str) -> float:
    x, y = set(d.shingle_hashes(a).tolist()), set(d.shingle_hashes(b).tolist())
    return len(x & y) / len(x | y)


def _pairs_at(similarity: float, n: int, seed: int) -> list[tuple[str, str]]:
    """n pairs of texts whose shingle sets have Jaccard similarity within 0.01 of `similarity`."""
    rng = random.Random(seed)
    probe = Deduplicator()
    pairs = []
    while len(pairs) < n:
        words = [f"t{rng.randrange(10**6)}" for _ in range(rng.randint(60, 120))]
        other = list(words)
        while True:
            j = _jaccard(probe, " ".join(words), " ".join(other))
            if j <= similarity + 0.01:
                break
            other[rng.randrange(len(other))] = f"x{rng.randrange(10**6)}"
        if abs(j - similarity) <= 0.01:
            pairs.append((" ".join(words), " ".join(other)))
    return pairs


def test_recall_at_090_and_exact_check_below_the_threshold(capsys):
    found = {}
    for weights in ((0.5, 0.5), (0.05, 0.95)):
        hits = 0
        for a, b in _pairs_at(0.90, 300, seed=7):
            d = Deduplicator(threshold=0.85, weights=weights)
            d.is_new(a)
            hits += not d.is_new(b)
        found[weights] = hits / 300
    false = 0
    for a, b in _pairs_at(0.75, 200, seed=8):
        d = Deduplicator(threshold=0.85)
        d.is_new(a)
        false += not d.is_new(b)
    with capsys.disabled():
        print(f"\nnear-dup recall at J=0.90 (threshold 0.85, 64 perms): weights 0.5/0.5 {found[(0.5, 0.5)]:.1%}, "
              f"0.05/0.95 {found[(0.05, 0.95)]:.1%}; pairs at J=0.75 taken as duplicates: {false}/200")
    assert found[(0.05, 0.95)] >= 0.95 and found[(0.5, 0.5)] < 0.8
    assert false == 0                              # candidates below the threshold are turned away by the exact check
