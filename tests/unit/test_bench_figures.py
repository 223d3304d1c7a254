"""The benchmark's arithmetic: medians and ratios of repeated runs, table read latencies."""

from __future__ import annotations

import pytest

from bench.bench_peers import figures, latency_summary
from bench.table_latency import Load, latencies


def _runs(*rates: float) -> list[dict[str, float | None]]:
    return [{"msgs_per_s": rate, "peak_rss_mib": 100.0 + rate / 1000} for rate in rates]


def test_ratios_are_of_the_medians_of_the_runs() -> None:
    result = figures({"raw/raw": _runs(90_000, 100_000, 80_000),
                      "p1/ours": _runs(5_000, 9_000, 6_000),
                      "p1/quix": _runs(12_000, 10_000, 11_000),
                      "p1wide/raw": _runs(60_000, 60_000, 60_000),
                      "p1wide/ours": _runs(3_000, 3_000, 3_000),
                      "p1wide/quix": _runs(11_000, 11_000, 11_000)})

    assert result["p1"]["ours"]["msgs_per_s"] == 6_000
    assert (result["p1"]["ours"]["min"], result["p1"]["ours"]["max"]) == (5_000, 9_000)
    assert result["p1"]["ours"]["peak_rss_mib"] == 109.0
    assert result["p1"]["ratios"] == {"ours/quix": 6_000 / 11_000, "ours/raw": 6_000 / 90_000}
    wide = result["p1wide"]["ratios"]
    assert wide["ours/raw"] == 3_000 / 60_000  # against the raw loop on the same topic
    assert wide["ours/10k_keys"] == 0.5
    assert wide["quix/10k_keys"] == 1.0


def test_a_record_is_readable_at_the_first_read_showing_its_sequence_or_a_later_one() -> None:
    load = Load(rate=10, seconds=1, probes=["a"])  # measures sequences 10..19
    load.acked["a"] = [(12, 100.0), (16, 100.5), (30, 101.0)]
    reads = [(100.2, 0), (100.4, 14), (100.9, 17), (101.6, 30)]

    found, missing = latencies(load, {"a": reads})

    assert found == pytest.approx([0.4, 0.4])  # 12 shown at 100.4, 16 at 100.9; 30 not measured
    assert missing == 0


def test_a_record_never_read_is_missing() -> None:
    load = Load(rate=10, seconds=1, probes=["a"])
    load.acked["a"] = [(12, 100.0)]

    assert latencies(load, {"a": [(100.2, 11)]}) == ([], 1)


def test_repeated_latency_runs_give_the_medians_of_their_percentiles() -> None:
    runs = [{"offered_msgs_per_s": 2_000, "p50_ms": p50, "p99_ms": p99}
            for p50, p99 in ((40, 400), (45, 80), (50, 75))]

    row = latency_summary(runs)

    assert (row["offered_msgs_per_s"], row["p50_ms"], row["p99_ms"]) == (2_000, 45, 80)
    assert [r["p99_ms"] for r in row["runs"]] == [400, 80, 75]
