"""Table views' own logic without Kafka: ordered pages and cursors, time parameters."""

import pytest

from streams import PerKeyTable, Settings, Tumbling, WindowedTable, create_app
from streams.web.table_views import (
    cursor_of,
    describe,
    parse_time,
    scan_page,
    window_lookup,
)

T0 = 1_800_000_000.0


@pytest.fixture
def tables() -> tuple[PerKeyTable[int], WindowedTable[int]]:
    plain = PerKeyTable("v_plain", value_type=int, default=int, register=False)
    windowed = WindowedTable("v_windowed", value_type=int, default=int, window=Tumbling(60),
                             register=False)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-views"}),
               agents=[], tables=[plain, windowed])
    # the in-memory store holds decoded keys and values
    for i, key in enumerate(["b", "a2", "a10", "a1", "c"]):
        plain.faust_table.data.data[key] = i
        for minute in range(3):
            start = T0 + 60 * minute
            windowed.faust_table.data.data[(key, (start, start + 59.9))] = 10 * i + minute
    return plain, windowed


def pages(table, prefix: str, limit: int) -> list[list[dict]]:
    result, after = [], None
    while True:
        entries, _ = scan_page(table, prefix, after, limit)
        result.append(entries)
        if len(entries) < limit:
            return result
        after = cursor_of(entries[-1])


def test_plain_pages_follow_key_order_and_the_prefix(tables) -> None:
    plain, _ = tables
    got = pages(plain, "a", 2)
    assert [[e["key"] for e in page] for page in got] == [["a1", "a10"], ["a2"]]
    assert got[0][0] == {"key": "a1", "value": 3}
    assert scan_page(plain, "", "b", 10)[0] == [{"key": "c", "value": 4}]
    assert scan_page(plain, "zzz", None, 10)[0] == []


def test_windowed_pages_never_skip_or_repeat_a_window(tables) -> None:
    _, windowed = tables
    got = [e for page in pages(windowed, "a1", 2) for e in page]
    assert [(e["key"], e["window"]["start_epoch"] - T0) for e in got] == [
        ("a1", 0), ("a1", 60), ("a1", 120), ("a10", 0), ("a10", 60), ("a10", 120)]
    assert got[1] == {"key": "a1", "window": {
        "start": "2027-01-15T08:01:00+00:00", "end": "2027-01-15T08:02:00+00:00",
        "start_epoch": T0 + 60, "end_epoch": T0 + 120}, "value": 31}
    # a bare key as cursor continues after all its windows
    assert scan_page(windowed, "", "b", 1)[0][0]["key"] == "c"


def test_window_lookups_answer_ranges_and_refuse_bad_parameters(tables) -> None:
    _, windowed = tables
    body = window_lookup(windowed, "b", {"from": str(T0 + 61), "to": "2027-01-15T08:02:00Z"})
    assert [(w["window_start"], w["value"]) for w in body["windows"]] == [
        ("2027-01-15T08:01:00+00:00", 1), ("2027-01-15T08:02:00+00:00", 2)]
    assert len(window_lookup(windowed, "b", {})["windows"]) == 3
    with pytest.raises(LookupError, match="no value in the current window"):
        window_lookup(windowed, "b", {"window": "current"})
    for query, message in [({"window": "last"}, "only window by name"),
                           ({"window": "current", "to": "1"}, "not both"),
                           ({"since": "1"}, "unknown parameter")]:
        with pytest.raises(ValueError, match=message):
            window_lookup(windowed, "b", query)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1800000000", T0), ("1800000000.5", T0 + 0.5), ("2027-01-15T08:00:00Z", T0),
    ("2027-01-15T09:00:00+01:00", T0), ("2027-01-15T08:00:00", T0),
])
def test_times_are_epoch_seconds_or_iso_8601(raw: str, expected: float) -> None:
    assert parse_time("from", raw) == expected


@pytest.mark.parametrize("raw", ["noon", "", "inf", "nan", "1e20", "2027-13-01"])
def test_bad_times_are_refused_with_the_parameter_name(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^from="):
        parse_time("from", raw)


def test_describe_counts_keys_per_partition_and_names_the_window(tables) -> None:
    plain, windowed = tables
    info = describe(windowed)
    assert info["windowed"] is True and info["window"] == {
        "type": "tumbling", "size_s": 60.0, "expires_s": None}
    assert sum(info["local_keys"].values()) == 15
    assert describe(plain)["window"] is None
    assert {int(p) for p in describe(plain)["local_keys"]} <= {0, 1, 2}
