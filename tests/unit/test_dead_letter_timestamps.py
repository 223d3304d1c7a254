"""A dead letter's own time survives a replay and a second failure, and a replay never
sends a record the broker's retention would delete before a worker reads it."""

from __future__ import annotations

from streams.processing.dead_letters import dead_letter_headers
from streams.processing.dlq_replay import outlives_retention

DAY_MS = 24 * 3_600_000
NOW_MS = 1_800_000_000_000


def test_a_timestamp_within_half_the_retention_is_kept() -> None:
    assert outlives_retention(NOW_MS - 3 * DAY_MS, 7 * DAY_MS, NOW_MS)
    assert not outlives_retention(NOW_MS - 4 * DAY_MS, 7 * DAY_MS, NOW_MS)
    assert not outlives_retention(NOW_MS - 400 * DAY_MS, 7 * DAY_MS, NOW_MS)


def test_any_timestamp_is_kept_when_the_topic_is_not_cleaned_up_by_time() -> None:
    assert outlives_retention(0, None, NOW_MS)


def test_a_dead_letter_takes_the_record_time_when_it_has_no_earlier_one() -> None:
    headers = dead_letter_headers([("trace", b"t")], "orders", 1, 7, ValueError("x"), 4,
                                  timestamp_ms=NOW_MS)
    assert dict(headers)["x-original-timestamp"] == str(NOW_MS).encode()
    assert headers[0] == ("trace", b"t")


def test_a_restamped_replay_that_fails_again_keeps_its_own_time() -> None:
    replayed = [("trace", b"t"), ("x-original-timestamp", b"1600000000123")]
    headers = dead_letter_headers(replayed, "orders", 1, 9, ValueError("again"), 4,
                                  timestamp_ms=NOW_MS)
    assert [v for k, v in headers if k == "x-original-timestamp"] == [b"1600000000123"]


def test_a_malformed_earlier_time_is_replaced_by_the_record_time() -> None:
    headers = dead_letter_headers([("x-original-timestamp", b"soon")], "orders", 1, 9,
                                  ValueError("x"), 1, timestamp_ms=NOW_MS)
    assert [v for k, v in headers if k == "x-original-timestamp"] == [str(NOW_MS).encode()]
