"""End-to-end harness: a consumer group of real worker processes under faults, and a checker.

`Harness` runs N processes of the real `worker.py` with the tracked test deployment
(tests/deployments/tracked.py) against a real cluster, feeds the source topic with keyed
records carrying a per-key sequence number, kills (-9), stops and restarts workers, reads
every worker's `GET /api/assignment`, and checks the sink topic of processed ids::

    with Harness(root, bootstrap, "demo", workdir, guarantee="at_least_once") as h:
        h.start_workers(3)
        h.feed(20_000, rate=2_000)
        h.kill_worker(1); h.restart_worker(1)
        h.wait_feed_done(); h.wait_caught_up()
        report = h.check()
        assert not report.problems(h.guarantee)

The checker is independent of the workers: it reads the sink topic from the beginning
(`read_committed` for exactly-once, so aborted transactions do not count) and compares it
with what the broker acknowledged to the feeder. `guarantee` is the workers'
PROCESSING_GUARANTEE and decides what counts as a problem (`CheckReport.problems`, in
tests/support/checker.py). The kill scenario and its figures are in tests/support/chaos.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.client_options import client_options
from streams.testing import WorkerProcess, wait_for
from tests.support.checker import (
    TABLE,
    CheckReport,
    DuplicateSources,
    Fed,
    Guarantee,
    KillWindow,
    RebalanceWindow,
    analyse,
)

T = TypeVar("T")
DEPLOYMENT = "tests.deployments.tracked"


class _Loop:
    """An asyncio loop on a thread of its own, for the feeder and the Kafka clients, so the
    harness itself can be driven from plain synchronous test code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="harness-loop",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Feeder:
    """Publishes keyed records {"id", "key", "seq"} at a steady rate with acks=all and
    idempotence; remembers the ones the broker acknowledged."""

    def __init__(self, bootstrap_servers: str, topic: str, keys: int, seed: int = 7) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.keys = [f"k{i}" for i in range(keys)]
        self.rng = random.Random(seed)
        self.acknowledged: list[Fed] = []
        self.failed = 0
        self.sent = 0
        self._next_seq: Counter[str] = Counter()

    async def run(self, count: int, rate: float) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**client_options(self.bootstrap_servers), acks="all",
                                    enable_idempotence=True, linger_ms=5,
                                    request_timeout_ms=30_000)
        await producer.start()
        started = time.monotonic()
        pending: set[asyncio.Future[Any]] = set()
        try:
            for _ in range(count):
                key = self.rng.choice(self.keys)
                item = Fed(id=self.sent, key=key, seq=self._next_seq[key])
                self._next_seq[key] += 1
                self.sent += 1
                value = json.dumps({"id": item.id, "key": key, "seq": item.seq}).encode()
                future = await producer.send(self.topic, key=key.encode(), value=value)
                future.add_done_callback(lambda f, item=item: self._done(f, item))
                pending.add(future)
                future.add_done_callback(pending.discard)
                ahead = self.sent / rate - (time.monotonic() - started)
                if ahead > 0.01:
                    await asyncio.sleep(ahead)
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await producer.stop()

    def _done(self, future: asyncio.Future[Any], item: Fed) -> None:
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
        else:
            self.acknowledged.append(item)


class Harness:
    """N tracked workers in one consumer group on `bootstrap_servers`, plus feeder, checker
    and fault injection. Workers are numbered from 1; their logs go to `workdir`."""

    def __init__(self, root: Path, bootstrap_servers: str, name: str, workdir: Path, *,
                 partitions: int = 3, replication: int = 1, keys: int = 30,
                 guarantee: Guarantee = "at_least_once", batch_size: int = 100,
                 session_timeout_s: float = 10.0, env: Mapping[str, str] | None = None,
                 ) -> None:
        self.root = root
        self.bootstrap_servers = bootstrap_servers
        self.topic = name
        self.sink = f"{name}.processed"
        self.app_id = f"app-{name}"
        self.workdir = workdir
        self.partitions = partitions
        self.replication = replication
        self.guarantee: Guarantee = guarantee
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "APP_ID": self.app_id,
            "DEPLOYMENT_MODULES": DEPLOYMENT, "TRACKED_TOPIC": name,
            "TRACKED_BATCH_SIZE": str(batch_size), "TOPIC_PARTITIONS": str(partitions),
            "TOPIC_REPLICATION": str(replication), "PROCESSING_GUARANTEE": guarantee,
            "FLUSH_INTERVAL_MS": "200", "SHUTDOWN_TIMEOUT_S": "10",
            # Faust reads these itself: a killed member is noticed after the session
            # timeout (Faust's default is 60 s).
            "BROKER_SESSION_TIMEOUT": str(session_timeout_s),
            "BROKER_HEARTBEAT_INTERVAL": str(max(session_timeout_s / 10, 0.5)),
            **(env or {}),
        }
        self.workers: dict[int, WorkerProcess] = {}
        self.kills: list[KillWindow] = []
        self.rebalances: list[RebalanceWindow] = []
        self.feeder = Feeder(bootstrap_servers, name, keys)
        self._feed: Any = None
        self._loop = _Loop()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Harness:
        self.create_topics()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self._feed is not None and not self._feed.done():
            self._feed.cancel()
        self._loop.close()

    def create_topics(self) -> None:
        """The source and sink topics with the workers' partition count."""
        self._loop.run(ensure_topics(self.bootstrap_servers, [
            TopicSpec(self.topic, self.partitions, self.replication),
            TopicSpec(self.sink, self.partitions, self.replication)]))

    # -- workers ---------------------------------------------------------------------------

    def worker(self, i: int, env: Mapping[str, str] | None = None) -> WorkerProcess:
        """Worker `i` (created on first use, with `env` added to the harness's)."""
        if i not in self.workers:
            # RocksDB paths under DATA_DIR do not name the app: one folder per run
            data = self.workdir / "data" / self.app_id / f"w{i}"
            data.mkdir(parents=True, exist_ok=True)
            self.workers[i] = WorkerProcess(
                self.root, {**self.env, "DATA_DIR": str(data), **(env or {})},
                log_path=self.workdir / f"worker-{i}.log")
        return self.workers[i]

    def start_worker(self, i: int, wait_ready: bool = True,
                     env: Mapping[str, str] | None = None) -> WorkerProcess:
        if self.live():
            self._rebalance_ahead(f"start w{i}")
        worker = self.worker(i, env).start()
        if wait_ready:
            worker.wait_ready(120)
        return worker

    def start_workers(self, count: int = 3) -> None:
        """Start workers 1..count together (the first members of the group)."""
        for i in range(1, count + 1):
            self.worker(i).start()
        for i in range(1, count + 1):
            self.workers[i].wait_ready(180)

    def stop_worker(self, i: int) -> int | None:
        """SIGTERM: a graceful leave (batches in hand finish, offsets are committed)."""
        self._rebalance_ahead(f"stop w{i}")
        return self.workers[i].stop()

    def kill_worker(self, i: int) -> KillWindow:
        """SIGKILL, remembering what the worker owned and had not committed."""
        owned = [p for p, owners in self.owners().items() if i in owners]
        self.workers[i].kill()
        at = time.monotonic()
        committed, ends = self.offsets()
        ranges = {p: (committed.get(p, 0), ends[p]) for p in owned}
        window = KillWindow(i, self.workers[i].url, at, time.time(), ranges, committed)
        self.kills.append(window)
        self.rebalances.append(RebalanceWindow(f"kill w{i}", committed))
        return window

    def _rebalance_ahead(self, cause: str) -> None:
        self.rebalances.append(RebalanceWindow(cause, self.offsets()[0]))

    def _settled_now(self) -> None:
        """Close the windows of the rebalances that have happened."""
        open_windows = [w for w in self.rebalances if w.ends is None]
        if open_windows:
            ends = self.offsets()[1]
            for window in open_windows:
                window.ends = ends

    def restart_worker(self, i: int, wait_ready: bool = True) -> WorkerProcess:
        return self.start_worker(i, wait_ready)

    def live(self) -> list[int]:
        return sorted(i for i, w in self.workers.items()
                      if w.process is not None and w.process.poll() is None)

    # -- assignment ------------------------------------------------------------------------

    def assignments(self) -> dict[int, dict[str, Any]]:
        """`GET /api/assignment` of every live worker that answers."""
        found = {}
        for i in self.live():
            try:
                status, body = self.workers[i].request("/api/assignment")
            except OSError:
                continue
            if status == 200:
                found[i] = body
        return found

    def owners(self) -> dict[int, list[int]]:
        """Source partition -> workers listing it as assigned."""
        owners: dict[int, list[int]] = {p: [] for p in range(self.partitions)}
        for i, body in self.assignments().items():
            for tp in body["assigned"]:
                if tp["topic"] == self.topic:
                    owners[tp["partition"]].append(i)
        return owners

    def settled(self, members: Iterable[int] | None = None) -> dict[int, list[int]] | None:
        """The owners if every partition has exactly one owner among `members` (default:
        the live workers), each of them owns at least one and none is rebalancing."""
        expected = set(self.live() if members is None else members)
        views = self.assignments()
        if set(views) != expected or any(v["rebalancing"] for v in views.values()):
            return None
        owners = self.owners()
        if any(len(o) != 1 for o in owners.values()):
            return None
        if {o[0] for o in owners.values()} != expected:
            return None
        return owners

    def wait_settled(self, members: Iterable[int] | None = None,
                     timeout: float = 120.0) -> dict[int, list[int]]:
        members = list(members) if members is not None else None
        owners = wait_for(lambda: self.settled(members), timeout,
                          f"every partition of {self.topic} owned once by {members or 'live'}")
        assert owners is not None
        self._settled_now()
        return owners

    # -- offsets ---------------------------------------------------------------------------

    def offsets(self, timeout: float = 90.0) -> tuple[dict[int, int], dict[int, int]]:
        """(the group's committed offsets, log end offsets) of the source partitions.

        Retried with fresh clients while the cluster cannot answer: no group coordinator
        yet, or a broker just lost (its partitions and the group coordinator move only
        once the controller has noticed, several seconds later).
        """
        from aiokafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._loop.run(self._offsets(), timeout=30)
            except (KafkaError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    async def _offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**client_options(self.bootstrap_servers),
                                    request_timeout_ms=10_000)
        consumer = AIOKafkaConsumer(**client_options(self.bootstrap_servers),
                                    enable_auto_commit=False, request_timeout_ms=10_000)
        await admin.start()
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            listed = await admin.list_consumer_group_offsets(self.app_id, partitions=tps)
            committed = {tp.partition: meta.offset for tp, meta in listed.items()
                         if meta is not None and meta.offset >= 0}
            ends = {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
            return committed, ends
        finally:
            await consumer.stop()
            await admin.close()

    def lag(self) -> int:
        committed, ends = self.offsets()
        return sum(end - committed.get(p, 0) for p, end in ends.items())

    def wait_caught_up(self, timeout: float = 300.0) -> None:
        wait_for(lambda: self.lag() == 0, timeout, f"group {self.app_id} to commit everything",
                 interval=1.0)

    def wait_processing(self, since: Mapping[int, int], timeout: float = 180.0,
                        started: float | None = None) -> float:
        """Wait until every partition has one owner and its committed offset moved past
        `since` (or reached the log end); return the seconds since `started` (a
        `time.monotonic()` value, default now)."""
        started = time.monotonic() if started is None else started

        def processing() -> bool:
            if self.settled() is None:
                return False
            committed, ends = self.offsets()
            return all(committed.get(p, 0) > since.get(p, 0) or committed.get(p, 0) >= end
                       for p, end in ends.items())

        wait_for(processing, timeout, f"every partition of {self.topic} processing again",
                 interval=0.25)
        elapsed = time.monotonic() - started
        self._settled_now()
        return elapsed

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, count: int, rate: float = 2_000.0) -> None:
        """Start publishing `count` records at `rate` per second in the background."""
        self._feed = self._loop.spawn(self.feeder.run(count, rate))

    def wait_feed_done(self, timeout: float = 600.0) -> None:
        self._feed.result(timeout)

    @property
    def feeding(self) -> bool:
        return self._feed is not None and not self._feed.done()

    # -- checking --------------------------------------------------------------------------

    def check(self, isolation_level: str | None = None,
              table_counts: bool = True) -> CheckReport:
        """Read the whole sink topic and compare it with what was acknowledged.

        `isolation_level` defaults to read_committed for exactly-once, read_uncommitted
        otherwise. Table counts are read through a live worker's table API.
        """
        level = isolation_level or ("read_committed" if self.guarantee == "exactly_once"
                                    else "read_uncommitted")
        sink = self._loop.run(self._read_sink(level), timeout=300)
        counts = self.table_counts({r["key"] for r in sink}) if table_counts else None
        return analyse(self.feeder.acknowledged, sink, counts)

    def table_counts(self, keys: Iterable[str]) -> dict[str, int]:
        worker = self.workers[self.live()[0]]
        counts = {}
        for key in sorted(keys):
            status, body = worker.request(f"/api/tables/{TABLE}/{key}")
            if status == 200:
                counts[key] = int(body["value"])
            elif status != 404:
                raise AssertionError(f"table lookup of {key!r} answered {status}: {body}")
        return counts

    async def _read_sink(self, isolation_level: str) -> list[dict[str, Any]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(**client_options(self.bootstrap_servers),
                                    enable_auto_commit=False,
                                    isolation_level=isolation_level)
        await consumer.start()
        try:
            tps = [TopicPartition(self.sink, p) for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            records: list[dict[str, Any]] = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in batch:
                        value = json.loads(record.value)
                        records.append({**value, "key": record.key.decode()})
            return records
        finally:
            await consumer.stop()

    def processed_uncommitted(self, report: CheckReport) -> list[int]:
        """Per kill: records the killed worker had processed (they are in the sink) but
        not committed when it died; what at-least-once may process again."""
        cut_off: set[tuple[int, int, int]] = set()
        for record in report.sink:
            kill = self._cut_off_by(record)
            if kill is not None:
                cut_off.add((kill, record["partition"], record["offset"]))
        counts = Counter(kill for kill, _, _ in cut_off)
        return [counts[n] for n in range(len(self.kills))]

    def classify_duplicates(self, report: CheckReport, samples: int = 5) -> DuplicateSources:
        """Say for every duplicate why the record came back: a kill (the killed worker had
        processed it before it died, and not committed it), a rebalance (processed before
        a join, leave or kill, inside that rebalance's window), or nothing.

        Each processing is compared with the one before it: a record processed again after
        a rebalance and once more after a kill counts once for each."""
        names = {w.url: f"w{i}" for i, w in self.workers.items()}
        sources = DuplicateSources(per_kill=[0] * len(self.kills))
        previous: dict[int, Mapping[str, Any]] = {}
        for record in report.sink:
            earlier = previous.get(record["id"])
            previous[record["id"]] = record
            if earlier is None:
                continue
            kill = self._cut_off_by(earlier)
            if kill is not None and record["at"] >= self.kills[kill].wall:
                sources.per_kill[kill] += 1
            elif any(w.covers(record["partition"], record["offset"]) for w in self.rebalances):
                sources.rebalance += 1
            else:
                sources.unexplained += 1
                sources.groups[f"p{record['partition']}: {names.get(earlier['worker'])}"
                               f"@g{earlier.get('generation')} -> "
                               f"{names.get(record['worker'])}@g{record.get('generation')}"] += 1
                if len(sources.examples) < samples:
                    sources.examples.append(
                        f"p{record['partition']} offset {record['offset']} at "
                        f"{earlier.get('at')} and {record.get('at')}")
        return sources

    def _cut_off_by(self, processed: Mapping[str, Any]) -> int | None:
        """The kill that ended the worker which processed this record before committing it
        (the first kill of that worker after the processing), if any."""
        for n, window in enumerate(self.kills):
            if window.url == processed["worker"] and processed["at"] <= window.wall:
                return n if window.covers(processed["partition"], processed["offset"]) else None
        return None
