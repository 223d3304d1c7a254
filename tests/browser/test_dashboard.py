"""The dashboard in real headless Chromium against two workers and a real broker: what a
person sees on each screen. Screenshots go to test-output/<test>/."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from playwright.sync_api import Page, expect

from streams.kafka.partitioner import key_partition
from streams.testing import WorkerProcess, commit_offsets, free_port, produce_orders, wait_for
from tests.browser.conftest import API_TOKEN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def shot(page: Page, output_dir: Path, name: str) -> None:
    page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)


def test_overview_shows_the_cluster(page: Page, workers: list[WorkerProcess],
                                    output_dir: Path) -> None:
    page.goto(workers[0].url + "/")
    summary = page.get_by_test_id("cluster-summary")
    expect(summary).to_contain_text("Brokers")
    expect(summary).to_contain_text(workers[0].get_json("/api/cluster")["consumer_group"])
    expect(page.get_by_test_id("live-status")).to_contain_text("live")
    shot(page, output_dir, "overview")


def test_topic_list_shows_the_test_topic_with_3_partitions(
        page: Page, workers: list[WorkerProcess], dashboard_topic: str,
        output_dir: Path) -> None:
    page.goto(workers[0].url + "/#/topics")
    row = page.locator(f'tr[data-topic="{dashboard_topic}"]')
    expect(row.locator('td[data-col="partitions"]')).to_have_text("3")
    shot(page, output_dir, "topics")
    row.locator("a").first.click()
    expect(page.get_by_test_id("partitions-table").locator("tbody tr")).to_have_count(3)
    expect(page.locator('tr[data-partition="0"]')).to_be_visible()
    shot(page, output_dir, "topic-detail")


def test_group_page_shows_each_workers_partitions_and_the_lag(
        page: Page, workers: list[WorkerProcess], dashboard_topic: str,
        kafka_bootstrap: str, run_async, output_dir: Path) -> None:
    group = workers[0].get_json("/api/cluster")["consumer_group"]
    page.goto(f"{workers[0].url}/#/groups/{group}")
    members = page.get_by_test_id("members-table").locator("tbody tr")
    expect(members).to_have_count(2)
    shown: dict[str, set[str]] = {}
    for worker in workers:
        row = page.locator(f'tr[data-url="{worker.url}"]')
        expect(row).to_be_visible()
        shown[worker.url] = set(row.locator("[data-tp]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.tp)"))
    api = workers[0].get_json(f"/api/groups/{group}")
    assert {m["url"]: {f'{p["topic"]}[{p["partition"]}]' for p in m["partitions"]}
            for m in api["members"]} == shown
    orders = [tp for tps in shown.values() for tp in tps if tp.startswith("orders[")]
    assert sorted(orders) == ["orders[0]", "orders[1]", "orders[2]"]
    assert all(any(tp.startswith("orders[") for tp in tps) for tps in shown.values())
    for row in api["offsets"]:  # settled: the fixture waited for the backlog
        expect(page.locator(f'tr[data-tp="{row["topic"]}[{row["partition"]}]"] '
                            'td[data-col="lag"]')).to_have_text(str(row["lag"]))
    shot(page, output_dir, "group")

    # A group that stopped part-way: the lag per partition is known exactly.
    readers = f"{dashboard_topic}-readers"
    run_async(commit_offsets(kafka_bootstrap, readers,
                        {TopicPartition(dashboard_topic, p): 1 for p in range(3)}))
    lagging = workers[0].get_json(f"/api/groups/{readers}")
    page.goto(f"{workers[0].url}/#/groups/{readers}")
    for row in lagging["offsets"]:
        expect(page.locator(f'tr[data-tp="{dashboard_topic}[{row["partition"]}]"] '
                            'td[data-col="lag"]')).to_have_text(str(row["lag"]))
    expect(page.get_by_test_id("group-lag")).to_have_text(f'{lagging["lag"]:,}')
    assert lagging["lag"] == 30 - 3
    page.get_by_role("button", name="Reset…").click()
    expect(page.get_by_test_id("reset-confirm")).to_contain_text(f"Reset group {readers}")
    shot(page, output_dir, "group-reset-confirm")
    page.get_by_role("button", name="Yes, reset").click()
    expect(page.get_by_test_id("group-lag")).to_have_text("30")


def test_search_by_key_finds_exactly_those_messages(
        page: Page, workers: list[WorkerProcess], dashboard_topic: str,
        output_dir: Path) -> None:
    page.goto(f"{workers[0].url}/#/messages/{dashboard_topic}")
    expect(page.get_by_test_id("scan-progress")).to_contain_text("scanned 30 of 30")
    page.get_by_test_id("search-key").fill("k3")
    page.get_by_test_id("search-button").click()
    rows = page.get_by_test_id("messages-table").locator("tbody tr")
    expect(rows).to_have_count(6)
    keys = rows.evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == ["k3"] * 6
    rows.first.click()
    expect(page.get_by_test_id("detail-key")).to_have_text("k3")
    assert json.loads(page.get_by_test_id("detail-value").inner_text())["i"] % 5 == 3
    shot(page, output_dir, "messages-search")

    page.get_by_test_id("search-key").fill("")
    page.locator('input[name="filter"]').fill("value.amount >= 250")
    page.get_by_test_id("search-button").click()
    expect(rows).to_have_count(5)
    page.locator('input[name="filter"]').fill("value.amount >")
    page.get_by_test_id("search-button").click()
    expect(page.get_by_test_id("results")).to_contain_text("expected")


def test_producing_from_the_ui_makes_the_message_appear(
        page: Page, workers: list[WorkerProcess], dashboard_topic: str,
        output_dir: Path) -> None:
    key = f"ui-{random.randrange(1 << 30):x}"
    page.goto(f"{workers[0].url}/#/messages/{dashboard_topic}")
    form = page.get_by_test_id("produce-form")
    form.locator('input[name="key"]').fill(key)
    form.locator('textarea[name="value"]').fill('{"amount": 777, "note": "typed in"}')
    form.locator('textarea[name="headers"]').fill("trace=from-the-browser")
    form.get_by_role("button", name="Produce").click()
    expect(page.get_by_test_id("produce-result")).to_contain_text("written to partition")
    page.get_by_test_id("search-key").fill(key)
    page.get_by_test_id("search-button").click()
    row = page.locator(f'tr[data-key="{key}"]')
    expect(row).to_have_count(1)
    row.click()
    expect(page.get_by_test_id("detail-value")).to_contain_text('"amount": 777')
    expect(page.get_by_test_id("message-detail")).to_contain_text("from-the-browser")
    shot(page, output_dir, "messages-produced")


def test_producer_service_page_produces(page: Page, workers: list[WorkerProcess],
                                       dashboard_topic: str, kafka_bootstrap: str,
                                       output_dir: Path) -> None:
    port = free_port()
    log = (output_dir / "producer.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "producer"], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
             "PRODUCER_PORT": str(port), "API_TOKEN": API_TOKEN})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: urllib.request.urlopen(url + "/health", timeout=5).status == 200,
                 90, "the producer service")
        key = f"svc-{random.randrange(1 << 30):x}"
        page.goto(url + "/")
        page.locator("#topic").select_option(dashboard_topic)
        page.locator('input[name="key"]').fill(key)
        page.get_by_role("button", name="Produce").click()
        expect(page.get_by_test_id("result")).to_contain_text("written to partition")
        shot(page, output_dir, "producer-service")
        found = workers[0].get_json(f"/api/topics/{dashboard_topic}/messages?key={key}")
        assert found["count"] == 1 and found["messages"][0]["value"] == {"amount": 120}
    finally:
        service.terminate()
        service.wait(30)
        log.close()


def test_table_lookup_and_browse_show_the_right_values(
        page: Page, workers: list[WorkerProcess], kafka_bootstrap: str, run_async,
        output_dir: Path) -> None:
    prefix = f"tb{random.randrange(1 << 30):x}"
    expected = run_async(produce_orders(kafka_bootstrap, prefix, count=60, customers=12))
    browse = f"/api/tables/customer_totals?prefix={prefix}&limit=100"
    wait_for(lambda: {e["key"]: e["value"] for e in workers[0].get_json(browse)["entries"]}
             == expected, 120, "the table (on both workers) to hold the orders")
    # A key the lookup API answers; the page must show the same value.
    customer = next((k for k in sorted(expected) if workers[1].request(
        f"/api/tables/customer_totals/{k}")[1].get("value") == expected[k]), None)
    assert customer is not None, "no key of the table could be looked up"
    page.goto(f"{workers[1].url}/#/tables/customer_totals")
    page.get_by_test_id("lookup-form").locator('input[name="key"]').fill(customer)
    page.get_by_test_id("lookup-form").get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("lookup-value")).to_be_visible()
    assert json.loads(page.get_by_test_id("lookup-value").inner_text()) == expected[customer]

    # A windowed table: the lookup shows the key's windows, which add up to its orders.
    minutes = f"/api/tables/orders_per_customer_minute/{customer}"
    wait_for(lambda: sum(w["value"] for w in workers[1].get_json(minutes)["windows"])
             == expected[customer]["orders"], 60, "the per-minute table to count the orders")
    page.goto(f"{workers[1].url}/#/tables/orders_per_customer_minute")
    page.get_by_test_id("lookup-form").locator('input[name="key"]').fill(customer)
    page.get_by_test_id("lookup-form").get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("lookup-value")).to_be_visible()
    windows = json.loads(page.get_by_test_id("lookup-value").inner_text())
    assert sum(w["value"] for w in windows) == expected[customer]["orders"]
    assert all(w["window_start"] < w["window_end"] for w in windows)
    shot(page, output_dir, "windowed-lookup")
    page.goto(f"{workers[1].url}/#/tables/customer_totals")

    form = page.get_by_test_id("browse-form")
    form.locator('input[name="prefix"]').fill(prefix)
    form.locator('input[name="limit"]').fill("100")
    form.get_by_role("button", name="Browse").click()
    rows = page.get_by_test_id("browse-table").locator("tbody tr")
    expect(rows).to_have_count(12)  # keys of both workers' partitions
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.key)") == sorted(expected)
    shot(page, output_dir, "tables")


def test_dead_letter_is_listed_and_replay_processes_it(
        page: Page, workers: list[WorkerProcess], send_records, output_dir: Path) -> None:
    customer = f"dlq-{random.randrange(1 << 30):x}"
    order = {"order_id": f"{customer}-1", "customer_id": customer, "amount_cents": 990}
    send_records("orders.dlq", [{
        "key": customer, "value": order, "headers": {
            "x-error-type": "TimeoutError", "x-error-message": "payment service timed out",
            "x-original-topic": "orders",
            "x-original-partition": str(key_partition(customer.encode(), 3)),
            "x-original-offset": "5", "x-attempts": "4",
            "x-failed-at": "2024-05-01T12:00:00+00:00"}}])
    page.goto(f"{workers[0].url}/#/dlq/orders")
    row = page.locator(f'tr[data-key="{customer}"]')
    expect(row).to_contain_text("TimeoutError")
    expect(row).to_contain_text("payment service timed out")
    row.locator('input[type="checkbox"]').check()
    shot(page, output_dir, "dead-letters")
    page.get_by_test_id("replay-selected").click()
    expect(page.get_by_test_id("replay-result")).to_contain_text("replayed 1")
    # browse (asks every worker): the letter goes back to its original partition, which
    # need not be the one a key lookup routes to
    wait_for(lambda: workers[0].get_json(f"/api/tables/customer_totals?prefix={customer}")[
        "entries"] == [{"key": customer, "value": {"orders": 1, "amount_cents": 990}}],
        60, "the replayed order processed")


def test_live_chart_moves_while_load_runs(page: Page, workers: list[WorkerProcess],
                                          kafka_bootstrap: str, output_dir: Path) -> None:
    page.goto(workers[0].url + "/#/overview")
    chart = page.get_by_test_id("chart-throughput")
    expect(chart).to_have_attribute("data-points", re.compile(r"[1-9]\d*"))  # sampling
    load = threading.Thread(target=lambda: asyncio.run(produce_orders(
        kafka_bootstrap, f"load{random.randrange(1 << 30):x}", count=20_000,
        customers=500)))
    load.start()
    try:
        page.wait_for_function(
            """() => {
                const c = document.querySelector('[data-testid="chart-throughput"]');
                const last = JSON.parse(c.dataset.last || "{}");
                return Number(c.dataset.points) >= 3 && last.produced_per_s > 0;
            }""", timeout=90_000)
        page.wait_for_function(
            """() => {
                const c = document.querySelector('[data-testid="chart-throughput"]');
                return JSON.parse(c.dataset.last || "{}").processed_per_s > 0;
            }""", timeout=90_000)
        shot(page, output_dir, "overview-live")
    finally:
        load.join(120)


def test_sign_in_with_the_token_keeps_it_for_the_tab_not_in_the_url(
        signed_out_page: Page, workers: list[WorkerProcess], output_dir: Path) -> None:
    page = signed_out_page
    page.goto(workers[0].url + "/#/topics")
    login = page.get_by_test_id("login")
    expect(login).to_be_visible()
    expect(page.get_by_test_id("error")).to_contain_text("API token")
    shot(page, output_dir, "signed-out")

    page.get_by_test_id("token-input").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(login).to_be_visible()  # refused: asked again
    page.get_by_test_id("token-input").fill(API_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(login).to_be_hidden()
    expect(page.get_by_test_id("create-topic")).to_be_visible()

    name = f"signed-in-{random.randrange(1 << 30):x}"
    form = page.get_by_test_id("create-topic")
    form.locator('input[name="name"]').fill(name)
    form.get_by_role("button", name="Create topic").click()
    expect(page.locator(f'tr[data-topic="{name}"]')).to_be_visible()
    assert API_TOKEN not in page.url
    assert page.evaluate("sessionStorage.getItem('streams-api-token')") == API_TOKEN
    page.goto(workers[0].url + "/#/overview")  # the live stream carries the token as well
    expect(page.get_by_test_id("live-status")).to_contain_text("live")
    shot(page, output_dir, "signed-in")

    page.get_by_test_id("logout").click()
    assert page.evaluate("sessionStorage.getItem('streams-api-token')") is None
    expect(login).to_be_visible()
