"""The Grafana dashboard, read as data: it must query metrics the platform exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

import streams.observability.metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "streams-platform.json"
DATASOURCES = ROOT / "docker" / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
METRIC = re.compile(r"\bstreams_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def documented_metrics() -> set[str]:
    return {line.split("`")[1].split("{")[0]
            for line in (streams.observability.metrics.__doc__ or "").splitlines()
            if line.startswith("- `streams_")}


def panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def test_every_queried_metric_is_exported() -> None:
    documented = documented_metrics()
    for expr in expressions():
        for name in METRIC.findall(expr):
            for suffix in HISTOGRAM_SUFFIXES:
                name = name.removesuffix(suffix)
            assert name in documented, f"{expr!r} queries {name}, which nothing exports"


def test_dashboard_covers_what_operators_watch() -> None:
    queried = {name for expr in expressions() for name in METRIC.findall(expr)}
    needed = {
        "streams_producer_messages_total",          # throughput produced
        "streams_consumer_messages_total",          # throughput processed
        "streams_consumer_lag",                     # lag per partition
        "streams_consumer_batch_seconds_bucket",    # batch timing percentiles
        "streams_producer_errors_total",            # errors
        "streams_consumer_dead_letters_total",      # dead letters
        "streams_rebalances_total",                 # rebalances
        "streams_broker_up",
        "streams_partition_assigned",               # every partition has one owner
        "streams_table_recovery_remaining_records", # restore progress
        "streams_transactions_total",               # exactly-once outcomes
    }
    assert needed <= queried, sorted(needed - queried)


def test_panels_use_the_provisioned_datasource_and_fit_the_grid() -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    ids = []
    for panel in panels():
        ids.append(panel["id"])
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
