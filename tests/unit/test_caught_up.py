"""When a batch agent counts as caught up, so that its open commit window closes at once
instead of after `_IDLE_CHECK_S` without records."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from streams.processing.agents import _IDLE_CHECK_S, _first_within
from streams.processing.consumer import BatchingConsumer


def consumer(highwaters: dict[TP, int | None], delivered: dict[TP, int | None],
             in_hand: bool = False) -> SimpleNamespace:
    def highwater(tp: TP) -> int | None:
        value = highwaters[tp]
        if value == -2:
            raise AssertionError("Partition is not assigned")  # aiokafka's, mid-rebalance
        return value

    return SimpleNamespace(records_in_hand=in_hand, assignment=lambda: set(highwaters),
                           highwater=highwater, delivered_up_to=delivered.get)


def test_a_consumer_not_started_has_not_caught_up() -> None:
    def not_started() -> set[TP]:
        raise ConsumerNotStarted("Consumer thread not yet started")

    stub = SimpleNamespace(records_in_hand=False, assignment=not_started)
    assert BatchingConsumer.caught_up(stub, "orders") is False  # type: ignore[arg-type]


ORDERS0, ORDERS1, OTHER = TP("orders", 0), TP("orders", 1), TP("other", 0)


@pytest.mark.parametrize(("highwaters", "delivered", "in_hand", "expected"), [
    # every partition delivered up to its end; another topic's lag does not count
    ({ORDERS0: 10, ORDERS1: 5, OTHER: 99}, {ORDERS0: 9, ORDERS1: 4, OTHER: 0}, False, True),
    ({ORDERS0: 10, ORDERS1: 5}, {ORDERS0: 9, ORDERS1: 3}, False, False),  # one behind
    ({ORDERS0: 10, ORDERS1: 5}, {ORDERS0: 9, ORDERS1: 4}, True, False),  # records in hand
    ({ORDERS0: 0}, {}, False, True),  # an empty partition, never read
    ({ORDERS0: 3}, {}, False, False),  # records, none read yet
    ({ORDERS0: None}, {ORDERS0: 9}, False, False),  # not fetched yet
    ({ORDERS0: -2}, {ORDERS0: 9}, False, False),  # revoked meanwhile
])
def test_caught_up_means_every_fetched_record_of_the_topic_was_delivered(
        highwaters, delivered, in_hand, expected) -> None:
    stub = consumer(highwaters, delivered, in_hand)
    assert BatchingConsumer.caught_up(stub, "orders") is expected  # type: ignore[arg-type]


def app(active: bool = True) -> SimpleNamespace:
    return SimpleNamespace(flow_control=SimpleNamespace(is_active=lambda: active))


def pipeline(due: float | None) -> SimpleNamespace:
    return SimpleNamespace(seconds_to_commit=lambda: due)


def test_an_open_window_closes_at_once_when_caught_up_and_waits_a_little_otherwise() -> None:
    assert _first_within(app(), pipeline(0.8), lambda: True) == 0.0  # type: ignore[arg-type]
    assert _first_within(app(), pipeline(0.8), lambda: False) == _IDLE_CHECK_S  # type: ignore[arg-type]
    assert _first_within(app(), pipeline(0.03), lambda: False) == 0.03  # type: ignore[arg-type]
    assert _first_within(app(active=False), pipeline(0.8), lambda: False) == 0.0  # type: ignore[arg-type]


def test_without_an_open_window_the_agent_waits_for_records_without_limit() -> None:
    assert _first_within(app(), pipeline(None), lambda: True) is None  # type: ignore[arg-type]
    assert _first_within(app(), None, lambda: True) is None  # type: ignore[arg-type]
