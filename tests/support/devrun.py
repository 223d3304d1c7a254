"""`make run`: a local broker, a worker and demo orders, until Ctrl-C.

With KAFKA_BOOTSTRAP_SERVERS set, that cluster is used and no broker is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from streams.errors import KafkaLauncherError, SettingsError
from streams.settings import Settings
from streams.testing import WorkerExitedError, WorkerProcess
from tests.support.demo import feed_orders
from tests.support.kafka_local import LocalKafka

ROOT = Path(__file__).resolve().parents[2]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Explicit handlers: a shell may start us with SIGINT ignored (background jobs), and
    # SIGTERM must clean up like Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
        return 130


def _run() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_dir = ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_env: dict[str, str] = {"WEB_PORT": str(settings.web_port)}
    with contextlib.ExitStack() as stack:
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            servers = settings.bootstrap_servers
            print(f"using the cluster at {servers}")
        else:
            print("starting a local Kafka broker ...", flush=True)
            try:
                kafka = stack.enter_context(LocalKafka())
            except KafkaLauncherError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            servers = kafka.bootstrap_servers
            # The broker's data is temporary, so the worker's table state must be too:
            # state from an earlier broker would not match this broker's changelogs.
            worker_env["DATA_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="streams-run-"))
        worker_env["KAFKA_BOOTSTRAP_SERVERS"] = servers
        worker = WorkerProcess(ROOT, worker_env, log_path=log_dir / "worker.log")
        stack.enter_context(worker)
        producer_log = stack.enter_context(open(log_dir / "producer.log", "wb"))
        producer = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "producer"], cwd=ROOT,
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers}, stdout=producer_log,
            stderr=subprocess.STDOUT)
        stack.callback(_stop, producer)
        print("starting the worker ...", flush=True)
        try:
            worker.wait_ready(120)
        except (TimeoutError, WorkerExitedError) as exc:
            print(f"error: the worker did not become ready: {exc} "
                  f"(log: {worker.log_path})", file=sys.stderr)
            return 1
        print(f"\nKAFKA_BOOTSTRAP_SERVERS={servers}")
        print(f"dashboard:     {worker.url}/")
        print(f"producer:      http://{settings.producer_host}:{settings.producer_port}/")
        print(f"worker API:    {worker.url}/api/tables")
        print(f"table lookup:  {worker.url}/api/tables/customer_totals/customer-007")
        print(f"health:        {worker.url}/health  {worker.url}/ready")
        print(f"worker log:    {worker.log_path}")
        print("feeding demo orders; Ctrl-C stops everything\n", flush=True)
        try:
            asyncio.run(feed_orders(replace(settings, bootstrap_servers=servers)))
        except KeyboardInterrupt:
            pass  # the way to end `make run`
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave processes behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("\nstopping the worker and the broker ...", flush=True)
    return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


if __name__ == "__main__":
    sys.exit(main())
