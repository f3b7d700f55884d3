"""The deduplicator: exact and near duplicates, batch = sequential, determinism."""
from __future__ import annotations

import random

from trainer.dedup import Deduplicator, normalise, shingles

BASE = "we should meet at the old harbour cafe on friday evening and bring the maps for the long hike on sunday morning"


def test_exact_near_and_distinct():
    d = Deduplicator()
    assert d.is_new(BASE)
    assert not d.is_new(BASE.upper() + "  ")                    # exact after normalisation
    assert d.last_match == 0
    assert not d.is_new(BASE + " ok")                             # near duplicate
    assert d.is_new("completely unrelated words about cooking pasta with garlic and olive oil tonight")
    assert (d.exact_duplicates, d.near_duplicates, len(d)) == (1, 1, 2)
    assert normalise("Hi,  THERE!") == "hi there" and shingles("a b") == {b"a b"}


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

    from trainer.dedup import lsh_params

    def outcome(make):
        try:
            return make()
        except ValueError as exc:
            return str(exc)

    for num_perm in (16, 64, 128):
        for threshold in (0.0, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.5):
            theirs = outcome(lambda: (lambda lsh: (lsh.b, lsh.r))(MinHashLSH(threshold=threshold, num_perm=num_perm)))
            assert outcome(lambda: lsh_params(threshold, num_perm)) == theirs, (threshold, num_perm)
