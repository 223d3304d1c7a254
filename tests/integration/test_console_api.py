"""The dashboard's JSON API on a real worker and broker: every endpoint, good and bad input."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streams.kafka.partitioner import key_partition
from streams.testing import WorkerProcess, commit_offsets, produce_orders, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def call(worker: WorkerProcess, method: str, path: str, body: Any = None,
         ) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(worker.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, (json.loads(raw) if "json" in kind and "nd" not in kind
                                     else raw.decode())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get(worker: WorkerProcess, path: str) -> Any:
    status, body = call(worker, "GET", path)
    assert status == 200, f"GET {path}: {status} {body}"
    return body


def refused(worker: WorkerProcess, method: str, path: str, body: Any = None,
            status: int = 400) -> str:
    """Assert a 4xx JSON error with a message; return the message."""
    got, answer = call(worker, method, path, body)
    assert got == status, f"{method} {path}: expected {status}, got {got} {answer}"
    assert isinstance(answer, dict) and answer["error"], answer
    return str(answer["error"])


async def send(servers: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(
                topic, key=r.get("key", "").encode() or None,
                value=json.dumps(r["value"]).encode(), partition=r.get("partition"),
                headers=[(k, v.encode()) for k, v in r.get("headers", {}).items()])
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[WorkerProcess]:
    app_id = f"console-api-{random.randrange(1 << 30):x}"
    log_dir = ROOT / "test-output" / "test_console_api"
    log_dir.mkdir(parents=True, exist_ok=True)
    process = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path_factory.mktemp("console-api")), "FLUSH_INTERVAL_MS": "200",
    }, log_path=log_dir / "worker.log")
    with process:
        process.wait_ready(timeout=120)
        yield process


@pytest.fixture(scope="module")
def topic(worker: WorkerProcess, kafka_bootstrap: str) -> str:
    """A 3-partition topic with 30 known records: keys k0..k4, amount = index."""
    name = f"console-api-{random.randrange(1 << 30):x}"
    status, body = call(worker, "POST", "/api/topics",
                        {"name": name, "partitions": 3, "replication": 1,
                         "config": {"retention.ms": "3600000"}})
    assert status == 201, body
    asyncio.run(send(kafka_bootstrap, name, [
        {"key": f"k{i % 5}", "value": {"i": i, "amount": i},
         "headers": {"trace": f"trace-{i}"} if i % 10 == 0 else {}}
        for i in range(30)]))
    return name


def test_cluster_summary(worker: WorkerProcess, topic: str) -> None:
    cluster = get(worker, "/api/cluster")
    assert len(cluster["brokers"]) >= 1
    assert cluster["controller_id"] in [b["node_id"] for b in cluster["brokers"]]
    assert cluster["topics"] >= 1 and cluster["partitions"] >= 3
    assert cluster["consumer_group"].startswith("console-api-")


def test_topics_list_and_detail(worker: WorkerProcess, topic: str) -> None:
    listed = {t["name"]: t for t in get(worker, "/api/topics")["topics"]}
    assert listed[topic]["partitions"] == 3
    assert listed[topic]["messages"] == 30
    assert listed["orders.dlq"]["dead_letters"] is True
    assert not any(name.startswith("__") for name in listed)
    assert any(t["internal"] for t in get(worker, "/api/topics?internal=true")["topics"])

    detail = get(worker, f"/api/topics/{topic}")
    assert [p["partition"] for p in detail["partitions"]] == [0, 1, 2]
    for p in detail["partitions"]:
        assert p["leader"] in p["replicas"] and p["isr"] == p["replicas"]
        assert p["start_offset"] == 0
    assert sum(p["end_offset"] for p in detail["partitions"]) == 30


def test_topic_bad_input(worker: WorkerProcess, topic: str) -> None:
    assert "does not exist" in refused(worker, "GET", "/api/topics/no-such-topic", status=404)
    assert "invalid topic name" in refused(worker, "GET", "/api/topics/bad%20name")
    assert "invalid topic name" in refused(worker, "POST", "/api/topics",
                                           {"name": "bad name!", "partitions": 1})
    assert "empty" in refused(worker, "POST", "/api/topics", {"partitions": 1})
    assert "already exists" in refused(worker, "POST", "/api/topics", {"name": topic},
                                       status=409)
    new = f"{topic}-x"
    assert "from 1 to 1000" in refused(worker, "POST", "/api/topics",
                                       {"name": new, "partitions": 0})
    assert "from 1 to 1000" in refused(worker, "POST", "/api/topics",
                                       {"name": new, "partitions": 5000})
    assert "broker" in refused(worker, "POST", "/api/topics",
                               {"name": new, "partitions": 1, "replication": 9})
    assert "config" in refused(worker, "POST", "/api/topics",
                               {"name": new, "config": {"bad key!": "1"}})
    assert "JSON" in refused(worker, "POST", "/api/topics", "not an object")


def test_add_partitions(worker: WorkerProcess, topic: str) -> None:
    name = f"{topic}-grow"
    assert call(worker, "POST", "/api/topics", {"name": name, "partitions": 2})[0] == 201
    assert "must be larger" in refused(worker, "POST", f"/api/topics/{name}/partitions",
                                       {"count": 2})
    assert "required" in refused(worker, "POST", f"/api/topics/{name}/partitions", {})
    refused(worker, "POST", "/api/topics/no-such-topic/partitions", {"count": 9}, status=404)
    status, body = call(worker, "POST", f"/api/topics/{name}/partitions", {"count": 4})
    assert status == 200, body
    wait_for(lambda: get(worker, f"/api/topics/{name}")["partition_count"] == 4, 30,
             "the new partitions in the metadata")


def test_browse_and_search(worker: WorkerProcess, topic: str) -> None:
    base = f"/api/topics/{topic}/messages"
    everything = get(worker, f"{base}?from=oldest&limit=500")
    assert everything["count"] == 30 and everything["scanned"] == 30
    assert everything["progress"] == "scanned 30 of 30" and everything["complete"]

    by_key = get(worker, f"{base}?from=oldest&key=k1")
    assert sorted(m["value"]["i"] for m in by_key["messages"]) == [1, 6, 11, 16, 21, 26]
    assert {m["key"] for m in by_key["messages"]} == {"k1"}

    filtered = get(worker, f"{base}?filter=" + urllib.request.quote(
        'value.amount > 24 and key != "k4"'))
    assert sorted(m["value"]["i"] for m in filtered["messages"]) == [25, 26, 27, 28]

    assert {m["value"]["i"] for m in get(worker, f"{base}?header=trace")["messages"]} == {
        0, 10, 20}
    assert [m["value"]["i"] for m in get(worker, f"{base}?header=trace%3Dtrace-10")[
        "messages"]] == [10]
    assert [m["value"]["i"] for m in get(worker, f"{base}?text=%22i%22%3A%2017")[
        "messages"]] == [17]

    newest = get(worker, f"{base}?limit=3")
    assert newest["order"] == "newest_first" and newest["count"] == 3
    times = [m["timestamp"] for m in newest["messages"]]
    assert times == sorted(times, reverse=True)

    one = get(worker, f"{base}?partition=1&from=offset&offset=2&limit=500")
    assert {m["partition"] for m in one["messages"]} == {1}
    assert min(m["offset"] for m in one["messages"]) == 2

    future = int(time.time() * 1000) + 3_600_000
    assert get(worker, f"{base}?from=timestamp&timestamp={future}")["count"] == 0
    assert get(worker, f"{base}?from=timestamp&timestamp=2000-01-01T00:00:00Z&limit=500")[
        "count"] == 30


def test_bounded_scan_reports_progress_and_continues(worker: WorkerProcess, topic: str,
                                                    ) -> None:
    base = f"/api/topics/{topic}/messages"
    first = get(worker, f"{base}?from=oldest&max_scan=5&limit=500")
    assert first["scanned"] == 5 and first["total"] == 30 and not first["complete"]
    assert first["progress"] == "scanned 5 of 30"
    positions = ",".join(f"{p}:{o}" for p, o in first["next_positions"].items())
    rest = get(worker, f"{base}?positions={positions}&limit=500")
    seen = {(m["partition"], m["offset"]) for m in first["messages"] + rest["messages"]}
    assert len(seen) == 30 and rest["complete"]

    page = get(worker, f"{base}?from=oldest&limit=4")
    assert page["count"] == 4 and not page["complete"]


def test_export_json_lines(worker: WorkerProcess, topic: str) -> None:
    status, text = call(worker, "GET",
                        f"/api/topics/{topic}/messages?from=oldest&key=k2&format=jsonl")
    assert status == 200
    lines = [json.loads(line) for line in text.splitlines()]
    assert sorted(m["value"]["i"] for m in lines) == [2, 7, 12, 17, 22, 27]


def test_messages_bad_input(worker: WorkerProcess, topic: str) -> None:
    base = f"/api/topics/{topic}/messages"
    refused(worker, "GET", "/api/topics/no-such-topic/messages", status=404)
    assert "over the cap 500" in refused(worker, "GET", f"{base}?limit=501")
    assert "over the cap 100000" in refused(worker, "GET", f"{base}?max_scan=100001")
    assert "not an integer" in refused(worker, "GET", f"{base}?limit=lots")
    assert "does not exist" in refused(worker, "GET", f"{base}?partition=7")
    assert "past the end" in refused(worker, "GET", f"{base}?from=offset&offset=999999")
    assert "below the minimum" in refused(worker, "GET", f"{base}?from=offset&offset=-1")
    assert "needs offset" in refused(worker, "GET", f"{base}?from=offset")
    assert "from=" in refused(worker, "GET", f"{base}?from=yesterday")
    assert "ISO 8601" in refused(worker, "GET", f"{base}?from=timestamp&timestamp=soon")
    for bad in ("--5", "%C2%B2", "99999999999999999999", "0001-01-01T00:00:00%2B14:00"):
        refused(worker, "GET", f"{base}?from=timestamp&timestamp={bad}")
    assert "not an integer" in refused(worker, "GET", f"{base}?from=offset&offset=1e3")
    assert "over the cap" in refused(worker, "GET",
                                     f"{base}?from=offset&offset=9223372036854775808")
    assert "partition:offset" in refused(worker, "GET", f"{base}?positions=0:--1")
    assert "partition:offset" in refused(worker, "GET", f"{base}?positions=garbage")
    assert "position" in refused(worker, "GET", f"{base}?filter=value.amount%20%3E")
    assert "unknown field" in refused(worker, "GET", f"{base}?filter=amount%20%3E%201")
    assert "jsonl" in refused(worker, "GET", f"{base}?format=xml")


def test_hostile_bodies_are_400_and_publish_nothing(worker: WorkerProcess, topic: str) -> None:
    base = f"/api/topics/{topic}/messages"
    before = get(worker, f"/api/topics/{topic}")
    for raw in (b"[" * 100_000, b'{"value": NaN}', b'{"value": {"x": Infinity}}'):
        request = urllib.request.Request(worker.url + base, data=raw, method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=60)
        assert answer.value.code == 400
        assert "not valid JSON" in json.loads(answer.value.read())["error"]
    status, body = call(worker, "POST", base, {"value": 1, "partition": 3})
    assert status == 400 and "does not exist" in body["error"]
    assert get(worker, f"/api/topics/{topic}") == before  # no end offset moved
    assert call(worker, "GET", "/health")[0] == 200


def test_produce_from_the_api(worker: WorkerProcess, topic: str) -> None:
    status, body = call(worker, "POST", f"/api/topics/{topic}/messages",
                        {"key": "from-api", "value": {"amount": 5},
                         "headers": {"trace": "ui"}, "partition": 2})
    assert status == 201 and body["partition"] == 2, body
    found = get(worker, f"/api/topics/{topic}/messages?key=from-api")["messages"]
    assert [(m["offset"], m["value"], m["headers"]) for m in found] == [
        (body["offset"], {"amount": 5}, {"trace": "ui"})]

    base = f"/api/topics/{topic}/messages"
    refused(worker, "POST", "/api/topics/no-such-topic/messages", {"value": 1}, status=404)
    assert "key or a value" in refused(worker, "POST", base, {})
    assert "does not exist" in refused(worker, "POST", base, {"value": 1, "partition": 3})
    assert "string values" in refused(worker, "POST", base, {"value": 1, "headers": {"a": 1}})
    assert "unknown fields" in refused(worker, "POST", base, {"value": 1, "colour": "red"})


def test_groups(worker: WorkerProcess, topic: str, kafka_bootstrap: str) -> None:
    app_group = get(worker, "/api/cluster")["consumer_group"]
    listed = {g["group"]: g for g in get(worker, "/api/groups")["groups"]}
    assert listed[app_group]["members"] == 1 and listed[app_group]["this_app"]

    group = get(worker, f"/api/groups/{app_group}")
    [member] = group["members"]
    assert member["url"] == worker.url
    assert {(p["topic"], p["partition"]) for p in member["partitions"]} >= {
        ("orders", 0), ("orders", 1), ("orders", 2)}
    assert group["distribution"][0]["by_topic"]["orders"] == 3

    lagging = f"{topic}-readers"
    asyncio.run(commit_offsets(kafka_bootstrap, lagging, {TopicPartition(topic, p): 1
                                                  for p in range(3)}))
    detail = get(worker, f"/api/groups/{lagging}")
    ends = {p["partition"]: p["end_offset"] for p in
            get(worker, f"/api/topics/{topic}")["partitions"]}
    assert detail["state"] == "Empty" and detail["members"] == []
    assert {o["partition"]: o["lag"] for o in detail["offsets"]} == {
        p: end - 1 for p, end in ends.items()}
    assert detail["lag"] == sum(ends.values()) - 3

    status, body = call(worker, "POST", f"/api/groups/{lagging}/reset", {"to": "earliest"})
    assert status == 200, body
    assert get(worker, f"/api/groups/{lagging}")["lag"] == sum(ends.values())
    status, body = call(worker, "POST", f"/api/groups/{lagging}/reset", {"to": "latest"})
    assert status == 200 and get(worker, f"/api/groups/{lagging}")["lag"] == 0
    status, body = call(worker, "POST", f"/api/groups/{lagging}/reset",
                        {"to": "timestamp", "timestamp": "2000-01-01T00:00:00Z"})
    assert status == 200 and all(o["offset"] == 0 for o in body["offsets"])


def test_groups_bad_input(worker: WorkerProcess, topic: str) -> None:
    app_group = get(worker, "/api/cluster")["consumer_group"]
    assert "does not exist" in refused(worker, "GET", "/api/groups/nobody-here", status=404)
    assert "member" in refused(worker, "POST", f"/api/groups/{app_group}/reset",
                               {"to": "earliest"}, status=409)
    idle = f"{topic}-idle"
    assert '"to"' in refused(worker, "POST", f"/api/groups/{idle}/reset", {"to": "never"})
    assert "committed offsets" in refused(worker, "POST", f"/api/groups/{idle}/reset",
                                          {"to": "earliest"})
    assert "timestamp" in refused(worker, "POST", f"/api/groups/{idle}/reset",
                                  {"to": "timestamp", "topic": topic})
    refused(worker, "POST", f"/api/groups/{idle}/reset",
            {"to": "earliest", "topic": "no-such-topic"}, status=404)


def test_table_browse(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    prefix = f"tb{random.randrange(1 << 30):x}"
    expected = asyncio.run(produce_orders(kafka_bootstrap, prefix, count=60, customers=12))
    wait_for(lambda: len(get(worker, f"/api/tables/customer_totals?prefix={prefix}&limit=500")
                         ["entries"]) == 12 and all(
        e["value"] == expected[e["key"]] for e in get(
            worker, f"/api/tables/customer_totals?prefix={prefix}&limit=500")["entries"]),
        120, "the table to hold the produced orders")
    first = get(worker, f"/api/tables/customer_totals?prefix={prefix}&limit=5")
    keys = [e["key"] for e in first["entries"]]
    assert keys == sorted(expected)[:5] and first["next_after"] == keys[-1]
    second = get(worker, f"/api/tables/customer_totals?prefix={prefix}&limit=5"
                         f"&after={first['next_after']}")
    assert [e["key"] for e in second["entries"]] == sorted(expected)[5:10]

    assert "no table" in refused(worker, "GET", "/api/tables/nope", status=404)
    assert "over the cap" in refused(worker, "GET", "/api/tables/customer_totals?limit=501")
    assert "scope" in refused(worker, "GET", "/api/tables/customer_totals?scope=galaxy")


def test_dead_letters_list_and_replay(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    customer = f"dlq-{random.randrange(1 << 30):x}"
    order = {"order_id": f"{customer}-1", "customer_id": customer, "amount_cents": 4200}
    # a real dead letter comes from the partition its key hashes to
    home = key_partition(customer.encode(), 3)
    asyncio.run(send(kafka_bootstrap, "orders.dlq", [{
        "key": customer, "value": order, "partition": 0, "headers": {
            "x-error-type": "TimeoutError", "x-error-message": "payment service timed out",
            "x-original-topic": "orders", "x-original-partition": str(home),
            "x-original-offset": "17", "x-attempts": "4",
            "x-failed-at": "2024-05-01T12:00:00+00:00"}}]))
    topics = {t["source_topic"]: t for t in get(worker, "/api/dlq")["topics"]}
    assert topics["orders"]["dead_letters"] >= 1

    def letter() -> dict[str, Any] | None:
        found = [m for m in get(worker, "/api/dlq/orders?limit=500&max_scan=100000")[
            "messages"] if m["key"] == customer]
        return found[0] if found else None

    found = wait_for(letter, 30, "the dead letter in the list")
    assert found["error"]["error_type"] == "TimeoutError"
    assert found["error"]["error_message"] == "payment service timed out"
    assert found["error"]["original_offset"] == "17" and found["value"] == order

    assert "does not exist" in refused(worker, "GET", "/api/dlq/no-such-topic", status=404)
    replay = "/api/dlq/orders/replay"
    assert "offsets" in refused(worker, "POST", replay, {})
    assert "pair" in refused(worker, "POST", replay, {"offsets": [[0]]})
    assert "does not exist" in refused(worker, "POST", replay, {"offsets": [[9, 0]]})
    assert "negative" in refused(worker, "POST", replay, {"offsets": [[0, -3]]})
    refused(worker, "POST", "/api/dlq/no-such-topic/replay", {"all": True}, status=404)

    status, body = call(worker, "POST", replay,
                        {"offsets": [[found["partition"], found["offset"]]]})
    assert status == 200 and body["replayed"] == 1, body
    wait_for(lambda: worker.request(f"/api/tables/customer_totals/{customer}")[1].get(
        "value") == {"orders": 1, "amount_cents": 4200}, 60, "the replayed order processed")


def test_live_samples_and_event_stream(worker: WorkerProcess) -> None:
    with urllib.request.urlopen(worker.url + "/api/live", timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = []
        while len(events) < 2:
            line = stream.readline().decode()
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
        assert events[0] == "history" and events[1] == "sample"
    samples = wait_for(lambda: get(worker, "/api/live/samples")["samples"], 30, "samples")
    assert {"produced_per_s", "processed_per_s", "lag", "batch_ms", "errors_per_s",
            "dead_letters_per_s"} <= set(samples[-1])


def test_pages_are_served(worker: WorkerProcess) -> None:
    with urllib.request.urlopen(worker.url + "/", timeout=10) as page:
        assert b'<main id="view"' in page.read()
    with urllib.request.urlopen(worker.url + "/static/js/app.js", timeout=10) as script:
        assert b"hashchange" in script.read()
