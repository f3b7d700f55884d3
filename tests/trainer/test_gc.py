"""The collector helpers: paused parts restore the collector, long-lived steps freeze what their
paused parts made and unfreeze it at the end, and leave a process's own frozen objects alone."""
from __future__ import annotations

import gc

import pytest

from trainer._gc import gc_long_lived, gc_paused


@pytest.fixture(autouse=True)
def fresh_process_collector():
    """Start as a fresh process does, with nothing frozen: earlier tests in this process may have
    frozen objects (the backend pool does after loading a model). Frozen again afterwards."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    yield
    if frozen:
        gc.freeze()


def test_paused_restores_the_collector_and_freezes_only_inside_a_long_lived_step():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with gc_paused():
        kept = [[i] for i in range(1000)]
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with gc_long_lived():
        with gc_long_lived():                   # nested (or concurrent) steps: one unfreeze, at the end
            with gc_paused():
                kept = [[i] for i in range(1000)]
            assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
        assert gc.get_freeze_count() >= len(kept)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_process_that_freezes_its_own_objects_keeps_them_frozen():
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with gc_long_lived():
            with gc_paused():
                kept = [[i] for i in range(1000)]
        assert gc.get_freeze_count() == before and len(kept) == 1000
    finally:
        gc.unfreeze()
