"""One run of one peer over a topic of orders: the raw loop, our worker, Quix Streams.

Each returns the rate as the job measured it itself (bench.marks; the raw loop times its
own first and last record) and the peak RSS of the process doing the work.

Quix Streams runs from a virtualenv of its own (`BENCH_QUIX_PYTHON`, default
`.venv-bench/bin/python`, made by `make bench` from bench/requirements.txt): it brings
orjson, which Faust would pick up for its JSON, so our worker in `.venv` would no longer
run as a user's install does. py-spy comes from the same virtualenv.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.bench_consumer import wait_committed
from bench.foundation import peak_rss_mib
from bench.marks import read_mark
from streams.testing import WorkerProcess, wait_for

ROOT = Path(__file__).resolve().parent.parent
LOGS = Path("test-output")
QUIX_PYTHON = Path(os.environ.get("BENCH_QUIX_PYTHON", ROOT / ".venv-bench" / "bin" / "python"))


async def _raw_loop(bootstrap: str, topic: str, total: int) -> float:
    """Seconds from the first fetched record to the last one counted and committed."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                group_id=f"{topic}-raw-{random.randrange(1 << 20):x}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    totals: dict[str, list[int]] = {}
    seen = 0
    first = 0.0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if batches and not first:
                first = time.monotonic()
            for records in batches.values():
                for record in records:
                    data = json.loads(record.value)
                    entry = totals.setdefault(data["customer"], [0, 0])
                    entry[0] += 1
                    entry[1] += data["amount"]
                seen += len(records)
            if batches:
                await consumer.commit()
        return time.monotonic() - first
    finally:
        await consumer.stop()


def run_raw(bootstrap: str, topic: str, total: int) -> dict[str, Any]:
    """An aiokafka loop in this process: count and sum per key in a dict, commit."""
    seconds = asyncio.run(_raw_loop(bootstrap, topic, total))
    return {"msgs_per_s": total / seconds, "peak_rss_mib": None}


def _rate(mark_file: Path) -> float:
    mark = wait_for(lambda: read_mark(mark_file), 5, f"{mark_file}")
    return mark["records"] / (mark["last"] - mark["first"])


def run_ours(bootstrap: str, tmp: str, topic: str, total: int, job: str, label: str,
             **extra: str) -> dict[str, Any]:
    """`bench.deployments.orders` in a worker; done once its group committed `total`."""
    group = f"{topic}-ours-{job}-{random.randrange(1 << 20):x}"
    mark = Path(tmp) / f"{group}.mark"
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": group, "DATA_DIR": f"{tmp}/{group}",
        "LOG_LEVEL": "WARNING", "DEPLOYMENT_MODULES": "bench.deployments.orders",
        "BENCH_TOPIC": topic, "BENCH_JOB": job, "BENCH_SINK": f"{group}-out",
        "BENCH_EXPECT": str(total), "BENCH_MARK_FILE": str(mark),
        "BENCH_MODEL": os.environ.get("BENCH_MODEL", "msgspec"), **extra},
        log_path=LOGS / f"bench-peers-{label}.log")
    with worker, _profiled(worker, label):
        assert worker.process is not None
        asyncio.run(wait_committed(bootstrap, group, topic, total, 900, worker.process))
        rss = peak_rss_mib(worker.process.pid)
    return {"msgs_per_s": _rate(mark), "peak_rss_mib": rss}


@contextlib.contextmanager
def _profiled(worker: WorkerProcess, label: str) -> Iterator[None]:
    """With `BENCH_PYSPY=1`, py-spy samples the worker into test-output/pyspy-<label>.txt
    (collapsed stacks: `py-spy record --format raw`)."""
    if os.environ.get("BENCH_PYSPY") != "1" or worker.process is None:
        yield
        return
    spy = subprocess.Popen([str(QUIX_PYTHON.with_name("py-spy")), "record",
                            "--pid", str(worker.process.pid), "--format", "raw", "--rate", "200",
                            "-o", str(LOGS / f"pyspy-{label}.txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def run_quix(bootstrap: str, tmp: str, topic: str, total: int, job: str,
             label: str) -> dict[str, Any]:
    """`bench.quix_jobs` with the Quix Streams virtualenv's Python."""
    if not QUIX_PYTHON.exists():
        raise RuntimeError(f"no {QUIX_PYTHON}: `make bench` creates it (python3 -m venv "
                           ".venv-bench && .venv-bench/bin/pip install -r bench/requirements.txt)")
    group = f"{topic}-quix-{job}-{random.randrange(1 << 20):x}"
    mark = Path(tmp) / f"{group}.mark"
    env = {**os.environ, "BENCH_EXPECT": str(total), "BENCH_MARK_FILE": str(mark)}
    with open(LOGS / f"bench-peers-quix-{label}.log", "ab") as log:
        process = subprocess.Popen(
            [str(QUIX_PYTHON), "-m", "bench.quix_jobs", job, bootstrap, topic, group,
             f"{tmp}/{group}", f"{group}-out"], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT)
        rss = [0.0]

        def done() -> bool:
            with contextlib.suppress(OSError):  # the process may just have ended
                rss[0] = peak_rss_mib(process.pid)
            return read_mark(mark) is not None or process.poll() is not None

        try:
            wait_for(done, 900, f"quix {job} to handle {total:,} records", interval=0.05)
            process.wait(120)
        finally:
            if process.poll() is None:
                process.kill()
    if process.returncode not in (0, None) and read_mark(mark) is None:
        raise RuntimeError(f"quix {job} exited with {process.returncode}")
    return {"msgs_per_s": _rate(mark), "peak_rss_mib": rss[0]}
