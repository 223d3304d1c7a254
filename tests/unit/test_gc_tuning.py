"""The worker's garbage-collection thresholds (streams.gc_tuning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.gc_tuning import freeze_startup_objects, set_collection_thresholds
from streams.settings import Settings


@pytest.fixture(autouse=True)
def python_defaults() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_young_threshold_comes_from_the_setting() -> None:
    young = Settings.from_env({"GC_YOUNG_THRESHOLD": "20000"}).gc_young_threshold
    set_collection_thresholds(young)
    assert gc.get_threshold() == (20_000, 20, 10)


def test_the_default_collects_far_less_often_than_python() -> None:
    set_collection_thresholds(Settings.from_env({}).gc_young_threshold)
    assert gc.get_threshold()[0] == 500_000


def test_zero_keeps_pythons_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    set_collection_thresholds(Settings.from_env({"GC_YOUNG_THRESHOLD": "0"}).gc_young_threshold)
    assert gc.get_threshold() == (700, 10, 10)


def test_objects_alive_at_startup_are_left_out_of_later_collections() -> None:
    survivor = [object()]
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    assert not any(obj is survivor for obj in gc.get_objects())
