"""Fuzzing both HTTP services from their OpenAPI descriptions, on a real worker and broker.

Hypothesis builds requests for every documented route: path and query values from edge
cases and arbitrary text, bodies that follow the schema or not at all (arbitrary JSON,
NaN, nesting 100,000 deep, random bytes, too many records), wrong content types, missing
or wrong tokens, foreign Origin and Host headers. Every answer must be a 4xx or 2xx within
the request timeout (never a 5xx, never a hang), and `/health` must keep answering.

Writes are aimed at this test's own topics and group, so the cluster other tests use is
left alone.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.testing import WorkerProcess, free_port, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fuzz-token-" + "9" * 24
PREFIX = f"fuzz-{random.randrange(1 << 30):x}"
REQUEST_TIMEOUT_S = 30
WORKER_CASES = 400
PRODUCER_CASES = 200
MAX_RECORDS = 50

EDGE_VALUES = ["", " ", "0", "-1", "--5", "+3", "1e999", "NaN", "Infinity", "0x10", "1_000",
               "99999999999999999999", "9" * 40, "-9223372036854775809", "9223372036854775807",
               "2026-13-45T99:00:00", "9999-12-31T23:59:59", "0001-01-01T00:00:00+14:00",
               "\u0663", "\u00b2", "\x00", "a" * 5000, "newest", "oldest", "offset",
               "timestamp", "jsonl", "local", "0:0", "0:-1", "x:y", "99:1", "true"]
EDGE_INTEGERS = [-(2**63) - 1, -1, 0, 1, 2, 3, 7, 2**31, 2**63, 10**30]


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    document: dict[str, Any]
    names: list[str]  # topic and group names writes may be aimed at


@dataclass
class Tally:
    cases: int = 0
    statuses: dict[int, int] | None = None

    def add(self, status: int) -> None:
        self.statuses = self.statuses or {}
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.cases += 1


def send(url: str, method: str, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url + path, data=body, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def healthy(url: str) -> bool:
    return send(url, "GET", "/health")[0] == 200


# --- strategies ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.sampled_from(EDGE_INTEGERS) | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that follow `schema` (small integers, so writes stay cheap) or, at times, not."""
    kind = schema.get("type")
    if "enum" in schema:
        shaped: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        fields = {name: from_schema(sub) for name, sub in properties.items()}
        shaped = st.fixed_dictionaries(fields) | st.fixed_dictionaries({}, optional=fields)
        if extra:
            shaped = st.dictionaries(st.text(max_size=20), from_schema(extra), max_size=4)
    elif kind == "array":
        shaped = st.lists(from_schema(schema.get("items", {})), max_size=4)
    elif kind == "integer":
        shaped = st.integers(-3, 8) | st.sampled_from(EDGE_INTEGERS)
    elif kind == "string":
        shaped = st.text(max_size=40)
    elif kind == "boolean":
        shaped = st.booleans()
    else:
        shaped = JSON
    return st.one_of(shaped, shaped, shaped, JSON)


def raw_bodies(schema: dict[str, Any] | None) -> st.SearchStrategy[bytes]:
    shaped = from_schema(schema or {}).map(lambda v: json.dumps(v).encode())
    too_many = st.just(json.dumps(
        {"records": [{"value": n} for n in range(MAX_RECORDS + 1)]}).encode())
    return st.one_of(
        shaped, shaped, shaped, shaped,
        JSON.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"[" * 100_000, b'{"a":' * 5000, b"NaN", b'{"value": NaN}',
                         b'{"records": [{"value": Infinity}]}', b'{"count": -Infinity}',
                         b"", b"{", b'{"name": "\\ud800"}', b"\xff\xfe", b"null"]),
        too_many,
        st.binary(max_size=200),
    )


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def segment(names: list[str]) -> st.SearchStrategy[str]:
    known = st.sampled_from(names)
    return st.one_of(known, known, known, st.sampled_from(EDGE_VALUES),
                     st.text(min_size=1, max_size=40))


@st.composite
def requests(draw: st.DrawFn, service: Service) -> tuple[str, str, bytes | None,
                                                          dict[str, str], str]:
    """(method, path, body, headers, what the answer may be: "ok" or "refused")."""
    operations = [(path, method, op) for path, ops in service.document["paths"].items()
                  for method, op in ops.items() if not op.get("x-streaming")]
    path, method, op = draw(st.sampled_from(operations))
    query = {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = draw(segment(service.names))
            path = path.replace("{" + param["name"] + "}", urllib.parse.quote(value, safe=""))
        elif draw(st.booleans()):
            query[param["name"]] = draw(st.one_of(
                from_schema(param["schema"]).map(_query_text), st.sampled_from(EDGE_VALUES),
                st.text(max_size=30)))
    if query:
        path += "?" + urllib.parse.urlencode(query)
    headers: dict[str, str] = {}
    expect = "any"
    auth = draw(st.sampled_from(["token", "token", "token", "none", "wrong"]))
    if auth == "token":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif auth == "wrong":
        headers["Authorization"] = draw(st.sampled_from(
            [f"Bearer {TOKEN}x", "Bearer", "Basic Zm9vOmJhcg==", TOKEN, "Bearer " + "a" * 300]))
    body = None
    if method == "post":
        schema = op.get("requestBody", {}).get("content", {}).get(
            "application/json", {}).get("schema")
        body = draw(raw_bodies(schema))
        headers["Content-Type"] = draw(st.sampled_from(
            ["application/json"] * 8 + ["text/plain", "application/x-www-form-urlencoded",
                                        "application/json; charset=latin-1", ""]))
        if auth != "token":
            expect = "refused"
        if draw(st.integers(1, 10)) == 10:
            headers["Origin"] = draw(st.sampled_from(["http://evil.example", "null"]))
            expect = "refused"
    if draw(st.integers(1, 15)) == 15:
        headers["Host"] = draw(st.sampled_from(["evil.example", "rebound.example:8881"]))
        expect = "refused"
    return method.upper(), path, body, headers, expect


def fuzz(service: Service, cases: int, tally: Tally) -> None:
    @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one_case(data: st.DataObject) -> None:
        method, path, body, headers, expect = data.draw(requests(service))
        started = time.monotonic()
        status, answer = send(service.url, method, path, body=body, headers=headers)
        took = time.monotonic() - started
        tally.add(status)
        where = f"{method} {path[:200]} {headers} body={body[:200] if body else body!r}"
        assert status < 500, f"{status} for {where}: {answer[:500]!r}"
        assert took < REQUEST_TIMEOUT_S, f"{took:.1f}s for {where}"
        if status >= 400:
            assert answer.strip(), f"{status} without a message for {where}"
        if expect == "refused":
            assert 400 <= status < 500, f"{status}, not refused: {where}"
        assert healthy(service.url), f"/health stopped answering after {where}"

    one_case()


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[WorkerProcess]:
    log_dir = ROOT / "test-output" / "test_http_fuzz"
    log_dir.mkdir(parents=True, exist_ok=True)
    process = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": f"{PREFIX}-app",
        "DATA_DIR": str(tmp_path_factory.mktemp("fuzz")), "API_TOKEN": TOKEN,
    }, log_path=log_dir / "worker.log")
    with process:
        process.wait_ready(timeout=120)
        for name in (PREFIX, f"{PREFIX}.dlq"):
            status, body = send(process.url, "POST", "/api/topics", body=json.dumps(
                {"name": name, "partitions": 2}).encode(), headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
            assert status == 201, body
        yield process


def test_worker_routes_never_answer_5xx(worker: WorkerProcess) -> None:
    document = json.loads(send(worker.url, "GET", "/openapi.json",
                               headers={"Authorization": f"Bearer {TOKEN}"})[1])
    assert "/api/topics/{topic}/messages" in document["paths"]
    tally = Tally()
    started = time.monotonic()
    fuzz(Service("worker", worker.url, document, [PREFIX, f"{PREFIX}.dlq", f"{PREFIX}-app",
                                                  "customer_totals", "orders-missing"]),
         WORKER_CASES, tally)
    elapsed = time.monotonic() - started
    print(f"\nworker fuzz: {tally.cases} requests in {elapsed:.1f}s, statuses {tally.statuses}")
    assert tally.cases >= WORKER_CASES // 2
    assert healthy(worker.url)


def test_producer_service_routes_never_answer_5xx(kafka_bootstrap: str, worker: WorkerProcess,
                                                  output_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (output_dir / "producer.log").open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "producer"], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, env={
                **os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "PRODUCER_PORT": str(port), "API_TOKEN": TOKEN,
                "PRODUCER_MAX_RECORDS": str(MAX_RECORDS)})
        try:
            wait_for(lambda: healthy(url), 90, "the producer service")
            document = json.loads(send(url, "GET", "/openapi.json")[1])
            tally = Tally()
            started = time.monotonic()
            fuzz(Service("producer", url, document, [PREFIX, "fuzz-missing-topic"]),
                 PRODUCER_CASES, tally)
            elapsed = time.monotonic() - started
            print(f"\nproducer fuzz: {tally.cases} requests in {elapsed:.1f}s, "
                  f"statuses {tally.statuses}")
            assert tally.cases >= PRODUCER_CASES // 2
            assert healthy(url)
            metrics = send(url, "GET", "/metrics")[1].decode()
            topics = {line.split('topic="')[1].split('"')[0] for line in metrics.splitlines()
                      if line.startswith("streams_producer_") and 'topic="' in line}
            assert topics <= {PREFIX, "(unknown)"}, f"metric labels grew: {sorted(topics)}"
        finally:
            service.terminate()
            service.wait(30)
