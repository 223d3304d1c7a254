"""Importing `streams` registers nothing: no codec, no metric, no collector. Binding a
windowed table registers the codec; `create_app` exposes the metrics in its registry, and
the guarantee metrics of the app being created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

from streams import Settings, create_app

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import faust.serializers.codecs as codecs
from prometheus_client import REGISTRY, CollectorRegistry
import streams, streams.app, streams.processing.transactions, streams.state.windows
import streams.observability.metrics, streams.kafka.publisher
def names():
    return {metric.name for metric in REGISTRY.collect()}
print("streams_window_key" in codecs.codecs, "streams_consumer_messages" in names(),
      "streams_processing_guarantee" in names())
streams.create_app(streams.Settings.from_env({"TABLE_STORE": "memory"}), agents=[],
                   tables=[streams.WindowedTable("w", value_type=int, default=int,
                                                 window=streams.Tumbling(60),
                                                 register=False)])
print("streams_window_key" in codecs.codecs, "streams_consumer_messages" in names(),
      "streams_processing_guarantee" in names())
"""


def test_import_registers_nothing_create_app_does() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.splitlines() == ["False False False", "True True True"]


def guarantees(registry: CollectorRegistry = REGISTRY) -> list[str]:
    return [sample.labels["guarantee"] for metric in registry.collect()
            if metric.name == "streams_processing_guarantee" for sample in metric.samples]


def test_the_guarantee_collector_shows_the_last_app_created_once() -> None:
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-eos",
                                  "PROCESSING_GUARANTEE": "exactly_once"}),
               agents=[], tables=[])
    assert guarantees() == ["exactly_once"]
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-alo"}),
               agents=[], tables=[])
    assert guarantees() == ["at_least_once"]


def test_apps_with_their_own_registries_each_show_their_guarantee() -> None:
    exactly_once, at_least_once = CollectorRegistry(), CollectorRegistry()
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-own-eos",
                                  "PROCESSING_GUARANTEE": "exactly_once"}),
               agents=[], tables=[], registry=exactly_once)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-own-alo"}),
               agents=[], tables=[], registry=at_least_once)
    assert guarantees(exactly_once) == ["exactly_once"]
    assert guarantees(at_least_once) == ["at_least_once"]
