"""What `ghsync serve` and `ghsync worker` do to the garbage collector before they start serving."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ghsync.entrypoints.cli import YOUNG_COLLECTION_EVERY, freeze_startup_heap


@pytest.fixture
def collector() -> Iterator[None]:
    """Put the collector back as it was: the test process goes on collecting as Python does."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector")
def test_start_up_objects_are_frozen_and_the_young_generation_is_collected_less_often() -> None:
    _, older, oldest = gc.get_threshold()
    built_at_start_up = [{"a": []} for _ in range(100)]

    freeze_startup_heap()

    walked = {id(o) for o in gc.get_objects()}  # what collections walk: the frozen are not among them
    assert gc.get_freeze_count() >= len(built_at_start_up)
    assert not any(id(o) in walked for o in built_at_start_up)
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, older, oldest)  # the older ones as Python's
