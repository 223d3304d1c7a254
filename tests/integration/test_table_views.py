"""Windowed tables and the table views on a real broker and a real worker (RocksDB).

Records are produced with explicit timestamps, so each test knows which window every
record lands in. The worker runs `tests/deployments/windowed.py`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.state.windows import decode_window_key
from streams.testing import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0


def windowed_worker(kafka_bootstrap: str, name: str, data_dir: Path, log_name: str,
                    expires_s: int = 3600) -> WorkerProcess:
    """A worker of app (and topic) `name` running tests/deployments/windowed.py."""
    log_dir = ROOT / "test-output" / "test_table_views"
    log_dir.mkdir(parents=True, exist_ok=True)
    return WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": name,
        "DATA_DIR": str(data_dir), "DEPLOYMENT_MODULES": "tests.deployments.windowed",
        "TEST_TOPIC": name, "TEST_EXPIRES_S": str(expires_s), "FLUSH_INTERVAL_MS": "100",
        # Faust's own setting: how often expired windows are removed (default 30 s).
        "TABLE_CLEANUP_INTERVAL": "1",
    }, log_path=log_dir / f"{log_name}.log")


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[WorkerProcess]:
    name = f"tv-{random.randrange(1 << 30):x}"
    process = windowed_worker(kafka_bootstrap, name, tmp_path_factory.mktemp("tv-data"),
                              "worker")
    with process:
        process.wait_ready()
        yield process


def produce(bootstrap: str, topic: str, records: list[tuple[str, float]],
            value: Any = None) -> None:
    """Publish one record per (key, epoch seconds), with that record timestamp; the value
    is `value(key, i)` or an event `{"id": i}`."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for i, (key, at) in enumerate(records):
                body = {"id": i} if value is None else value(key, i)
                await producer.send_and_wait(topic, key=key.encode(),
                                             value=json.dumps(body).encode(),
                                             timestamp_ms=round(at * 1000))
        finally:
            await producer.stop()

    asyncio.run(send())


def windows_of(worker: WorkerProcess, table: str, key: str, start: float, end: float,
               ) -> dict[float, int]:
    body = worker.get_json(f"/api/tables/{table}/{quote(key)}?from={start}&to={end}")
    return {datetime.fromisoformat(w["window_start"]).timestamp(): w["value"]
            for w in body["windows"]}


def minute_ago(minutes: int) -> float:
    return float((math.floor(time.time() / 60) - minutes) * 60)


def hop_counts(times: list[float], size: int = 60, step: int = 20) -> dict[float, int]:
    counts: dict[float, int] = {}
    for at in times:
        first = (at // step) * step - size + step
        for start in range(int(first), int(at) + 1, step):
            counts[float(start)] = counts.get(float(start), 0) + 1
    return counts


def test_records_count_in_the_windows_of_their_timestamps(worker: WorkerProcess,
                                                           kafka_bootstrap: str) -> None:
    key = f"tumble-{random.randrange(1 << 20)}"
    t = minute_ago(10)
    times = [t, t + 30, t + 59.9, t + 60, t + 125]  # minutes t: 3, t+60: 1, t+120: 1
    produce(kafka_bootstrap, worker.env["TEST_TOPIC"], [(key, at) for at in times])

    expected = {t: 3, t + 60: 1, t + 120: 1}
    wait_for(lambda: windows_of(worker, "events_per_minute", key, t, t + 179) == expected,
             DEADLINE, "tumbling counts per record minute")
    # ISO-8601 bounds answer the same; a range starting inside a window includes it
    start_iso = datetime.fromtimestamp(t + 70, UTC).isoformat().replace("+00:00", "Z")
    body = worker.get_json(f"/api/tables/events_per_minute/{key}?from={start_iso}"
                           f"&to={t + 179}")
    assert [(w["window_start"], w["window_end"], w["value"]) for w in body["windows"]] == [
        (datetime.fromtimestamp(t + 60, UTC).isoformat(),
         datetime.fromtimestamp(t + 120, UTC).isoformat(), 1),
        (datetime.fromtimestamp(t + 120, UTC).isoformat(),
         datetime.fromtimestamp(t + 180, UTC).isoformat(), 1)]

    hops = hop_counts(times)
    assert len(hops) == 9 and max(hops.values()) == 3
    wait_for(lambda: windows_of(worker, "events_hopping", key, t - 60, t + 200) == hops,
             DEADLINE, "hopping counts (60 s windows every 20 s)")


def test_current_window(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    key = f"now-{random.randrange(1 << 20)}"
    now = time.time()
    # two events in this minute and two in the next: whichever is current when the test
    # asks, it holds 2
    produce(kafka_bootstrap, worker.env["TEST_TOPIC"],
            [(key, now), (key, now), (key, now + 60), (key, now + 60)])

    def current() -> dict[str, Any] | None:
        status, body = worker.request(f"/api/tables/events_per_minute/{key}?window=current")
        return body if status == 200 and body["value"] == 2 else None

    body = wait_for(current, DEADLINE, "the current window to hold its two events")
    start = datetime.fromisoformat(body["window_start"]).timestamp()
    assert start == math.floor(time.time() / 60) * 60 or start == math.floor(now / 60) * 60
    status, missing = worker.request("/api/tables/events_per_minute/nobody?window=current")
    assert status == 404 and "no value in the current window" in missing["error"]


def changelog_keys(bootstrap: str, topic: str) -> set[bytes]:
    async def read() -> set[bytes]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        keys: set[bytes] = set()
        try:
            batches = await consumer.getmany(timeout_ms=3000)
            while batches:
                keys.update(r.key for records in batches.values() for r in records)
                batches = await consumer.getmany(timeout_ms=1000)
        finally:
            await consumer.stop()
        return keys

    return asyncio.run(read())


def test_windows_older_than_expires_are_removed(worker: WorkerProcess,
                                                 kafka_bootstrap: str) -> None:
    key = f"old-{random.randrange(1 << 20)}"
    old, recent = minute_ago(180), minute_ago(5)  # expires is one hour
    produce(kafka_bootstrap, worker.env["TEST_TOPIC"], [(key, old), (key, old + 1),
                                                        (key, recent)])

    wait_for(lambda: windows_of(worker, "events_per_minute", key, old, recent + 59)
             == {recent: 1}, DEADLINE, "the recent window to be counted, the old one gone")
    # it was written (its changelog record exists) and then removed
    changelog = f"{worker.env['APP_ID']}-events_per_minute-changelog"
    written = {decode_window_key(raw) for raw in changelog_keys(kafka_bootstrap, changelog)}
    assert (key, old) in {(name, start) for name, (start, _) in written}
    assert windows_of(worker, "events_hopping", key, old - 60, old + 60) == {}


def test_scan_pages_through_local_keys_in_order(worker: WorkerProcess,
                                                kafka_bootstrap: str) -> None:
    prefix = f"scan{random.randrange(1 << 20):x}-"
    keys = [f"{prefix}{i:02d}" for i in range(12)]
    t = minute_ago(20)
    records = [(key, t + 60 * (i % 3)) for i, key in enumerate(keys) for _ in range(i + 1)]
    produce(kafka_bootstrap, worker.env["TEST_TOPIC"], records)
    expected_totals = {key: i + 1 for i, key in enumerate(keys)}

    def page(table: str, limit: int, after: str | None = None) -> dict[str, Any]:
        query = f"prefix={quote(prefix)}&limit={limit}&scope=local"
        if after is not None:
            query += f"&after={quote(after)}"
        return worker.get_json(f"/api/tables/{table}?{query}")  # type: ignore[no-any-return]

    wait_for(lambda: {e["key"]: e["value"] for e in page("events_total", 100)["entries"]}
             == expected_totals, DEADLINE, "every key to be in the table")

    seen: list[str] = []
    after = None
    for _ in range(3):
        body = page("events_total", 5, after)
        seen += [e["key"] for e in body["entries"]]
        after = body["next_after"]
        if after is None:
            break
    assert seen == keys and after is None

    # a windowed table pages by key and window: the cursor names both
    first = page("events_per_minute", 5)
    assert [(e["key"], e["window"]["start_epoch"], e["value"]) for e in first["entries"]] == [
        (key, t + 60 * (i % 3), i + 1) for i, key in enumerate(keys[:5])]
    assert first["next_after"] == f"{keys[4]}@{t + 60 * (4 % 3)!r}"
    rest = page("events_per_minute", 100, first["next_after"])
    assert [e["key"] for e in rest["entries"]] == keys[5:]

    listed = {t["name"]: t for t in worker.get_json("/api/tables")["tables"]}
    assert listed["events_per_minute"]["windowed"] is True
    assert listed["events_per_minute"]["window"] == {"type": "tumbling", "size_s": 60.0,
                                                     "expires_s": 3600.0}
    assert listed["events_hopping"]["window"]["step_s"] == 20.0
    assert listed["events_total"]["windowed"] is False
    local = listed["events_total"]["local_keys"]
    assert set(local) == {"0", "1", "2"} and sum(local.values()) >= len(keys)


def test_windows_recovered_after_a_restart_still_expire(kafka_bootstrap: str,
                                                         tmp_path: Path) -> None:
    """Faust expires only windows its running process wrote (faust-streaming issue 385);
    windows recovered from RocksDB must expire too."""
    expires = 60
    name = f"tv-restart-{random.randrange(1 << 30):x}"
    process = windowed_worker(kafka_bootstrap, name, tmp_path / "data", "restart",
                              expires_s=expires)
    key = "restarted"
    with process:
        process.wait_ready()
        produced_at = time.time()
        window = float(math.floor(produced_at / 60) * 60)
        produce(kafka_bootstrap, name, [(key, produced_at)])
        wait_for(lambda: windows_of(process, "events_per_minute", key, window, window)
                 == {window: 1}, DEADLINE, "the window to be counted")
        assert process.stop() == 0
        process.start()
        process.wait_ready()
        # Faust removes a window once now - expires has passed the minute after it ended
        earliest_expiry = window + 60 + expires
        assert time.time() < earliest_expiry, "the restart took longer than the window lives"
        assert windows_of(process, "events_per_minute", key, window, window) == {window: 1}, \
            "the window survived the restart"
        wait_for(lambda: windows_of(process, "events_per_minute", key, window, window) == {},
                 earliest_expiry + 60 + DEADLINE - time.time(),
                 "the recovered window to expire")


def test_any_worker_answers_windowed_lookups(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Lookups of keys another worker owns are forwarded there, for windowed tables too."""
    name = f"tv-two-{random.randrange(1 << 30):x}"
    workers = [windowed_worker(kafka_bootstrap, name, tmp_path / w, f"two-{w}")
               for w in ("a", "b")]
    with workers[0], workers[1]:
        def both_own_partitions() -> bool:
            topic = {f"{name}[{p}]" for p in range(3)}
            owned = [assigned & topic for w in workers
                     if (assigned := w.ready_assignment()) is not None]
            return len(owned) == 2 and all(owned) and not owned[0] & owned[1]

        wait_for(both_own_partitions, 120, "two workers sharing the topic's partitions")
        t = minute_ago(3)
        keys = [f"two-{i}" for i in range(12)]
        produce(kafka_bootstrap, name, [(key, t + 60 * (i % 2)) for i, key in enumerate(keys)])
        expected = {key: {t + 60 * (i % 2): 1} for i, key in enumerate(keys)}
        for worker in workers:
            wait_for(lambda w=worker: {k: windows_of(w, "events_per_minute", k, t, t + 119)
                                       for k in keys} == expected,
                     DEADLINE, f"every key answered by {worker.url}")
        # the browse merges both workers' pages, windows in order
        entries = workers[0].get_json("/api/tables/events_per_minute?prefix=two-")["entries"]
        assert [(e["key"], e["window"]["start_epoch"]) for e in entries] == sorted(
            (key, t + 60 * (i % 2)) for i, key in enumerate(keys))


def test_demo_counts_orders_per_customer_and_minute(kafka_bootstrap: str,
                                                    tmp_path: Path) -> None:
    log_dir = ROOT / "test-output" / "test_table_views"
    log_dir.mkdir(parents=True, exist_ok=True)
    demo = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "APP_ID": f"tv-demo-{random.randrange(1 << 30):x}", "DATA_DIR": str(tmp_path),
        "FLUSH_INTERVAL_MS": "100",
    }, log_path=log_dir / "demo.log")
    customer = f"tv-demo-{random.randrange(1 << 30):x}"
    t = minute_ago(4)
    with demo:
        demo.wait_ready()
        produce(kafka_bootstrap, "orders", [(customer, t + 1), (customer, t + 2),
                                            (customer, t + 61)],
                value=lambda key, i: {"order_id": f"{key}-{i}", "customer_id": key,
                                      "amount_cents": 100 * (i + 1)})
        wait_for(lambda: windows_of(demo, "orders_per_customer_minute", customer, t, t + 119)
                 == {t: 2, t + 60: 1}, DEADLINE, "orders counted per customer and minute")
        assert demo.get_json(f"/api/tables/customer_totals/{customer}")["value"] == {
            "orders": 3, "amount_cents": 600}


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/api/tables/nope/k", 404, "no table named 'nope' (tables: by_number, events_hopping"),
    ("/api/tables/nope", 404, "no table named 'nope'"),
    ("/api/tables/by_number/abc", 400, "not an integer"),
    ("/api/tables/events_total?limit=501", 400, "over the cap"),
    ("/api/tables/events_total?limit=zero", 400, "not an integer"),
    ("/api/tables/events_per_minute/k?window=yesterday", 400, "only window by name"),
    ("/api/tables/events_per_minute/k?from=noon", 400, "neither ISO-8601"),
    ("/api/tables/events_per_minute/k?from=nan", 400, "out of range"),
    ("/api/tables/events_per_minute/k?from=200&to=100", 400, "before its start"),
    ("/api/tables/events_per_minute/k?window=current&from=1", 400, "not both"),
    ("/api/tables/events_per_minute/k?size=9", 400, "unknown parameter"),
])
def test_bad_requests_say_what_is_wrong(worker: WorkerProcess, path: str, status: int,
                                        words: str) -> None:
    got, body = worker.request(path)
    assert (got, body["status"]) == (status, status)
    assert words in body["error"]
