"""Browser-test fixtures: Debian's Chromium driven by Playwright, two workers, known data.

The workers run with an API token that every request needs (reads too), so each screen is
checked the way a protected deployment serves it; `page` starts signed in (the token in the
tab's sessionStorage, as the login field leaves it), `signed_out_page` does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, Page, sync_playwright

from streams.testing import WorkerProcess, produce_orders, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
T = TypeVar("T")
API_TOKEN = "browser-test-token-" + "5" * 24
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browsers` (apt-get install "
                           "chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser: Browser, *, signed_in: bool) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    if signed_in:
        context.add_init_script(
            f"sessionStorage.setItem('streams-api-token', {json.dumps(API_TOKEN)})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, signed_in=True)


@pytest.fixture
def signed_out_page(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, signed_in=False)


@pytest.fixture(scope="module")
def workers(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[list[WorkerProcess]]:
    """Two workers of one fresh app (consumer group), both ready and in the group."""
    app_id = f"dashboard-{random.randrange(1 << 30):x}"
    log_dir = ROOT / "test-output" / "test_dashboard"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = [WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path_factory.mktemp(f"dashboard-{n}")),
        "FLUSH_INTERVAL_MS": "200", "API_TOKEN": API_TOKEN, "API_TOKEN_READS": "1",
    }, log_path=log_dir / f"worker-{n}.log") for n in range(2)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready(timeout=180)

        def both_in_group() -> bool:
            status, group = processes[0].request(f"/api/groups/{app_id}")
            return (status == 200 and group["state"] == "Stable"
                    and len(group["members"]) == 2
                    and all(p.request("/ready")[0] == 200 for p in processes))

        wait_for(both_in_group, 180, "both workers in a stable group")
        # one order per partition, so the group has committed offsets to show even when
        # this module runs first on a fresh `orders` topic
        run_async(produce_orders(kafka_bootstrap, app_id, count=6, customers=6))

        def backlog_done() -> bool:
            # the shared `orders` topic may hold other tests' records: a fresh group reads
            # them all first, and the lag shown must be settled to compare with the API
            group = processes[0].get_json(f"/api/groups/{app_id}")
            return bool(group["offsets"]) and group["lag_by_topic"].get("orders", 1) == 0

        wait_for(backlog_done, 300, "the workers to catch up with the orders topic")
        yield processes
    finally:
        for process in processes:
            process.stop()


async def _send(servers: str, topic: str, records: list[dict[str, Any]]) -> None:
    """Write records ({key, value, headers, partition}) and wait for the acks."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(
                topic, key=r["key"].encode() if r.get("key") else None,
                value=json.dumps(r["value"]).encode(), partition=r.get("partition"),
                headers=[(k, v.encode()) for k, v in r.get("headers", {}).items()])
    finally:
        await producer.stop()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on a thread of its own.

    Playwright's sync API keeps an event loop running on the test's thread while a browser
    is open, so `asyncio.run` cannot be called there.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(name="run_async")
def run_async_fixture() -> Callable[[Coroutine[Any, Any, T]], T]:
    return run_async


@pytest.fixture
def send_records(kafka_bootstrap: str) -> Callable[[str, list[dict[str, Any]]], None]:
    """send_records(topic, [{"key", "value", "headers", "partition"}, ...]), acks=all."""
    return lambda topic, records: run_async(_send(kafka_bootstrap, topic, records))


@pytest.fixture(scope="module")
def dashboard_topic(workers: list[WorkerProcess], kafka_bootstrap: str) -> str:
    """A 3-partition topic created through the API, with 30 records: keys k0..k4."""
    name = f"dashboard-{random.randrange(1 << 30):x}"
    request = urllib.request.Request(
        workers[0].url + "/api/topics", method="POST",
        data=json.dumps({"name": name, "partitions": 3}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
    run_async(_send(kafka_bootstrap, name, [
        {"key": f"k{i % 5}", "value": {"i": i, "amount": i * 10}} for i in range(30)]))
    return name
