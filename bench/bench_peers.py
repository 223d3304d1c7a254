"""Our batch agents against Quix Streams and a raw aiokafka loop, on the same topics.

Two topics of JSON orders of ~200 bytes, 3 partitions, filled once and read by every peer
in its own consumer group: `BENCH_ORDERS` (default 200,000) orders keyed by 10,000
customers, and `BENCH_WIDE_KEYS` (default 1,000,000) orders each of its own customer, in a
random order: every record changes a key never seen before, and no cache holds the table.

- raw: an aiokafka loop (`getmany`, `json.loads`, count and sum in a dict, commit), in
  this process: the ceiling for Python; on each topic;
- P1: per customer, count and sum of the amount in a RocksDB table with a changelog.
  Ours: `@batch_agent` + `PerKeyTable`, typed model values (`BENCH_MODEL`, default
  `msgspec`: msgspec.Struct, the documented fast path; `faust`: faust.Record). Quix Streams:
  `sdf.update(..., stateful=True)`, defaults. On both topics (`p1`, `p1wide`); the wide
  figure is also given as a ratio of the 10,000-key one (a cache cliff shows there).
  Ours at the default `COMMIT_INTERVAL_MS` (1 s: table changes of a second's batches
  committed together, as Quix Streams' checkpoint and Kafka Streams' commit.interval.ms
  do) and also with `COMMIT_INTERVAL_MS=0` (`p1batch`: each batch committed on its own);
- P6: the peak RSS of each worker doing P1;
- P7: a stateless map of each order to one sink record. Ours: `@batch_agent(sink=...)`
  returning `(key, value)` pairs, at-least-once and exactly-once (`p7eos`). Quix Streams:
  `sdf.apply` then `sdf.to_topic`, defaults;
- P3 (`p3`): latency of an echo agent to a sink at steady offered loads (bench.sink_latency);
- P3 tables (`p3table`): at 2,000 msg/s, from a record's acknowledgement by the broker to
  its table change being readable over HTTP, at the default batch settings and with
  FLUSH_INTERVAL_MS=50 (bench.table_latency).

Throughput is records / (last - first record handled), as each job reports it itself
(bench.marks): start-up and group join are left out for every peer alike. Ours must also
reach committed offsets at the end of the topic (the sink acknowledged first). Each
throughput peer runs `BENCH_REPEAT` times (default 3) in rounds, ours and Quix Streams
taking turns at going first, so drift of the machine hits both alike; the median and the
range are reported, and ratios are of medians. The latency loads run `BENCH_LATENCY_REPEAT`
times (default 1), in rounds over all loads; their p50 and p99 are then medians of the runs.

Run parts with `BENCH_PEERS` (comma-separated: raw, p1, p1batch, p1wide, p7, p7eos, p3, p3table;
default all), e.g. `BENCH_PEERS=raw,p1 BENCH_REPEAT=1 python -m bench bench.bench_peers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import random
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.peer_runs import LOGS, run_ours, run_quix, run_raw
from bench.sink_latency import sink_latency
from bench.table_latency import table_latency
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import send_all
from tests.support.kafka_local import kafka_for_session

ORDERS = int(os.environ.get("BENCH_ORDERS", "200000"))
KEYS = 10_000
WIDE_KEYS = int(os.environ.get("BENCH_WIDE_KEYS", "1000000"))
PARTITIONS = 3
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
PARTS = os.environ.get("BENCH_PEERS",
                       "raw,p1,p1batch,p1wide,p7,p7eos,p3,p3table").split(",")
MODEL = os.environ.get("BENCH_MODEL", "msgspec")
#: Our variants of a job, as named in the results.
OURS = ("ours", "ours_each_batch", "ours_exactly_once")
LOADS = [(500, 1000), (1_000, 1000), (2_000, 1000), (10_000, 1000), (2_000, 50)]
TABLE_LOADS = [(2_000, 100, 1000), (2_000, 100, 50)]  # rate, BATCH_SIZE, FLUSH_INTERVAL_MS
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "10"))
LATENCY_REPEAT = int(os.environ.get("BENCH_LATENCY_REPEAT", "1"))

Run = Callable[[], dict[str, Any]]


def orders(count: int, keys: int, distinct: bool = False) -> list[tuple[bytes, bytes]]:
    """`count` orders of customers drawn from `keys` (`distinct`: `count` customers, one
    order each, in a random order)."""
    rng = random.Random(11)
    note = "n" * 90
    width = len(str(keys - 1))
    shuffled = list(range(count)) if distinct else []
    rng.shuffle(shuffled)
    records = []
    for i in range(count):
        customer = f"customer-{shuffled[i] if distinct else rng.randrange(keys):0{width}d}"
        value = {"order_id": i, "customer": customer, "amount": rng.randint(1, 10_000),
                 "currency": "EUR", "items": rng.randint(1, 9), "note": note}
        records.append((customer.encode(), json.dumps(value).encode()))
    return records


def fill(bootstrap: str, keys: int, distinct: bool = False) -> tuple[str, int]:
    """A new topic of `ORDERS` orders over `keys` customers, or with `distinct` of `keys`
    orders each of its own customer; (its name, distinct keys)."""
    topic = f"bench-orders-{keys}-{random.randrange(1 << 30):x}"
    records = orders(keys, keys, distinct=True) if distinct else orders(ORDERS, keys)
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, PARTITIONS, 1)]))
    asyncio.run(send_all(bootstrap, topic, records, PARTITIONS))
    return topic, len({key for key, _ in records})


def rounds(bootstrap: str, tmp: str, topics: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every throughput peer `REPEAT` times; per "<job>/<peer>" the runs in order."""
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    narrow, wide = topics.get("narrow", ""), topics.get("wide", "")
    for n in range(REPEAT):
        plan: list[tuple[str, Run]] = []
        if "raw" in PARTS:
            plan.append(("raw/raw", partial(run_raw, bootstrap, narrow, ORDERS)))
        for name, topic, job in (("p1", narrow, "p1"), ("p1wide", wide, "p1"),
                                 ("p7", narrow, "p7")):
            if name not in PARTS:
                continue
            if name == "p1wide":
                plan.append(("p1wide/raw", partial(run_raw, bootstrap, wide, WIDE_KEYS)))
            total = WIDE_KEYS if name == "p1wide" else ORDERS
            pair: list[tuple[str, Run]] = [
                (f"{name}/ours", partial(run_ours, bootstrap, tmp, topic, total, job, name)),
                (f"{name}/quix", partial(run_quix, bootstrap, tmp, topic, total, job, name))]
            plan.extend(pair if n % 2 == 0 else pair[::-1])
            if name == "p1" and "p1batch" in PARTS:
                plan.append(("p1/ours_each_batch", partial(
                    run_ours, bootstrap, tmp, narrow, ORDERS, "p1", "p1batch",
                    COMMIT_INTERVAL_MS="0")))
            if name == "p7" and "p7eos" in PARTS:
                plan.append(("p7/ours_exactly_once", partial(
                    run_ours, bootstrap, tmp, narrow, ORDERS, "p7", "p7eos",
                    PROCESSING_GUARANTEE="exactly_once")))
        for key, run_one in plan:
            runs[key].append(run_one())
            print(f"  round {n + 1}/{REPEAT} {key:<22} "
                  f"{runs[key][-1]['msgs_per_s']:>9,.0f} msg/s", flush=True)
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["msgs_per_s"] for r in runs]
    rss = [r["peak_rss_mib"] for r in runs if r["peak_rss_mib"] is not None]
    return {"msgs_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
            "runs": rates, "peak_rss_mib": max(rss) if rss else None}


def figures(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per job: each peer's summary and the ratios of medians."""
    jobs: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, done in runs.items():
        job, peer = key.split("/")
        jobs[job][peer] = summary(done)
    raw = jobs.get("raw", {}).get("raw")
    for job, peers in jobs.items():
        if job == "raw":
            continue
        baseline = peers.get("raw") or raw
        quix = peers.get("quix")
        ratios: dict[str, float] = {}
        for peer in OURS:
            if peer not in peers:
                continue
            rate = peers[peer]["msgs_per_s"]
            if quix:
                ratios[f"{peer}/quix"] = rate / quix["msgs_per_s"]
            if baseline:
                ratios[f"{peer}/raw"] = rate / baseline["msgs_per_s"]
        if job == "p1wide" and "p1" in jobs:
            for peer in ("ours", "quix", "raw"):
                if peer in peers and peer in jobs["p1"]:
                    ratios[f"{peer}/10k_keys"] = (peers[peer]["msgs_per_s"]
                                                        / jobs["p1"][peer]["msgs_per_s"])
        peers["ratios"] = ratios
    return dict(jobs)


def latency_rounds(bootstrap: str, tmp: str) -> dict[str, list[dict[str, Any]]]:
    """P3 for sinks and tables, each load `LATENCY_REPEAT` times in rounds over the loads."""
    runs: dict[str, dict[tuple[int, ...], list[dict[str, Any]]]] = {
        "p3": defaultdict(list), "p3_table": defaultdict(list)}
    for _ in range(LATENCY_REPEAT):
        if "p3" in PARTS:
            for rate, flush in LOADS:
                runs["p3"][rate, flush].append(sink_latency(
                    bootstrap, tmp, rate, flush, LOAD_SECONDS, LOGS / "bench-peers-latency.log"))
        if "p3table" in PARTS:
            for rate, size, flush in TABLE_LOADS:
                runs["p3_table"][rate, size, flush].append(table_latency(
                    bootstrap, tmp, rate, size, flush, LOAD_SECONDS,
                    LOGS / "bench-peers-table-latency.log"))
    return {part: [latency_summary(done) for done in loads.values()]
            for part, loads in runs.items() if loads}


def latency_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's description, with p50 and p99 the medians of all runs."""
    return {**runs[0], "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "runs": [{"p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]} for r in runs]}


def run(bootstrap_servers: str | None = None) -> dict[str, Any]:
    LOGS.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "orders": ORDERS, "keys": KEYS, "wide_keys": WIDE_KEYS, "model": MODEL,
        "repeat": REPEAT, "latency_repeat": LATENCY_REPEAT,
        "orjson_in_worker_venv": importlib.util.find_spec("orjson") is not None}
    with contextlib.ExitStack() as stack:
        bootstrap = bootstrap_servers or stack.enter_context(kafka_for_session())
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        topics: dict[str, str] = {}
        if {"raw", "p1", "p7", "p7eos"} & set(PARTS):
            topics["narrow"], _ = fill(bootstrap, KEYS)
        if "p1wide" in PARTS:
            topics["wide"], result["wide_distinct_keys"] = fill(bootstrap, WIDE_KEYS,
                                                                distinct=True)
        result.update(figures(rounds(bootstrap, tmp, topics)))
        result.update(latency_rounds(bootstrap, tmp))
    report(result)
    return result


def _rate(peer: dict[str, Any]) -> str:
    spread = f"({peer['min']:,.0f}-{peer['max']:,.0f})" if len(peer["runs"]) > 1 else ""
    return f"{peer['msgs_per_s']:>9,.0f} msg/s {spread:<17}"


def _p99_range(row: dict[str, Any]) -> str:
    p99 = [r["p99_ms"] for r in row["runs"]]
    return f" ({min(p99):,.0f}-{max(p99):,.0f})" if len(p99) > 1 else ""


def report(result: dict[str, Any]) -> None:
    print(f"peers ({result['orders']:,} orders of ~200 B, {PARTITIONS} partitions; our values: "
          f"{result['model']}; throughput: median of {result['repeat']} interleaved runs "
          "(min-max), ratios of medians)")
    if result["orjson_in_worker_venv"]:
        print("  WARNING: orjson is installed next to our worker, so Faust encodes JSON with "
              "it, unlike a user's install (pip uninstall orjson quixstreams in .venv)")
    if "raw" in result:
        print(f"  raw aiokafka loop (dict, no changelog), {KEYS:,} keys  "
              f"{_rate(result['raw']['raw'])}")
    titles = {"p1": f"P1 count+sum, RocksDB + changelog, {KEYS:,} keys",
              "p1wide": f"P1 count+sum, RocksDB + changelog, "
                        f"{result.get('wide_distinct_keys', 0):,} distinct keys (one order "
                        "each)",
              "p7": "P7 map to a sink topic"}
    for job, title in titles.items():
        peers = result.get(job)
        if not peers:
            continue
        print(f"  {title}")
        ratios = peers["ratios"]
        for who in ("raw", *OURS, "quix"):
            if who not in peers:
                continue
            rss = peers[who]["peak_rss_mib"]
            notes = [f"peak RSS {rss:>4.0f} MiB" if rss is not None else " " * 18]
            notes += [f"{ratios[k]:.2f}x {k.split('/')[1].replace('_', ' ')}"
                      for k in ratios if k.startswith(f"{who}/")]
            print(f"    {who:<18} {_rate(peers[who])} {'  '.join(notes)}")
    if result.get("p3"):
        print("  P3 latency, echo agent to a sink, BATCH_SIZE=100 (send -> sink timestamp)")
        for row in result["p3"]:
            print(f"    {row['offered_msgs_per_s']:>6,} msg/s  FLUSH_INTERVAL_MS="
                  f"{row['flush_interval_ms']:<5} p50 {row['p50_ms']:>7,.0f} ms  "
                  f"p99 {row['p99_ms']:>7,.0f} ms{_p99_range(row)}")
    if result.get("p3_table"):
        print("  P3 table latency (broker ack -> readable over GET /api/tables/<table>/<key>)")
        for row in result["p3_table"]:
            print(f"    {row['offered_msgs_per_s']:>6,} msg/s  BATCH_SIZE={row['batch_size']} "
                  f"FLUSH_INTERVAL_MS={row['flush_interval_ms']:<5} p50 {row['p50_ms']:>6,.0f} ms"
                  f"  p99 {row['p99_ms']:>6,.0f} ms{_p99_range(row)}  "
                  f"({row['probe_records']:,} probes, "
                  f"resolution {row['resolution_ms']:.0f} ms, worker CPU "
                  f"{row['worker_cpu_percent']:.0f}%)")
