"""The same warning over and over is written once per window, then with its count."""

from __future__ import annotations

import logging

from streams.observability.logs import RepeatFilter


def record(message: str, *args: object, level: int = logging.ERROR,
           name: str = "aiokafka.cluster") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_a_repeated_error_is_written_once_per_window_then_with_its_count(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("streams.observability.logs.time.monotonic", lambda: clock[0])
    repeats = RepeatFilter(window_s=60)
    missing = "Topic %s not found in cluster metadata"
    written = [repeats.filter(record(missing, "orders")) for _ in range(500)]
    assert written.count(True) == 1
    assert repeats.filter(record(missing, "payments")), "another topic is another message"
    clock[0] += 61
    again = record(missing, "orders")
    assert repeats.filter(again)
    assert again.getMessage() == ("Topic orders not found in cluster metadata "
                                  "(and 499 more times in the last 60s)")
    assert not repeats.filter(record(missing, "orders"))


def test_info_and_distinct_messages_pass() -> None:
    repeats = RepeatFilter()
    assert all(repeats.filter(record("closing db", level=logging.INFO)) for _ in range(10))
    assert all(repeats.filter(record("dead-lettered orders[0]@%d", n)) for n in range(100))


def test_it_remembers_a_bounded_number_of_messages() -> None:
    repeats = RepeatFilter(remembered=10)
    assert repeats.filter(record("first"))
    assert not repeats.filter(record("first"))
    for n in range(1000):
        repeats.filter(record("unique %d", n))
    assert repeats.filter(record("first")), "forgotten: only the last 10 are tracked"
