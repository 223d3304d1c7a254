"""The garbage-collection thresholds of a worker and the producer service (streams.gc_tuning)."""

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


def test_the_producer_service_collects_as_seldom_as_a_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.web import producer_service

    seen: list[int] = []

    async def serve(settings: Settings, config: object) -> int:
        seen.append(gc.get_threshold()[0])
        return 0

    monkeypatch.setattr(producer_service, "serve", serve)
    settings = Settings.from_env({"GC_YOUNG_THRESHOLD": "300000"})
    assert producer_service.run_producer_service(settings) == 0
    assert seen == [300_000]
    assert gc.get_freeze_count() > 0, "start-up objects are out of the collector's reach"
