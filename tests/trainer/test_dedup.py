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
