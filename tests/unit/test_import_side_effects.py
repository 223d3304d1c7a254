"""Importing `streams` only defines things; `create_app` (and binding a windowed table)
registers what an app needs, for the app being created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY

from streams import Settings, create_app

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import faust.serializers.codecs as codecs
from prometheus_client import REGISTRY
import streams, streams.app, streams.processing.transactions, streams.state.windows
names = {metric.name for metric in REGISTRY.collect()}
print("streams_processing_guarantee" in names, "streams_window_key" in codecs.codecs)
streams.create_app(streams.Settings.from_env({"TABLE_STORE": "memory"}), agents=[],
                   tables=[streams.WindowedTable("w", value_type=int, default=int,
                                                 window=streams.Tumbling(60),
                                                 register=False)])
names = {metric.name for metric in REGISTRY.collect()}
print("streams_processing_guarantee" in names, "streams_window_key" in codecs.codecs)
"""


def test_import_registers_no_codec_and_no_collector_create_app_does() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.splitlines() == ["False False", "True True"]


def guarantees() -> list[str]:
    return [sample.labels["guarantee"] for metric in REGISTRY.collect()
            if metric.name == "streams_processing_guarantee" for sample in metric.samples]


def test_the_guarantee_collector_shows_the_last_app_created_once() -> None:
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-eos",
                                  "PROCESSING_GUARANTEE": "exactly_once"}),
               agents=[], tables=[])
    assert guarantees() == ["exactly_once"]
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-alo"}),
               agents=[], tables=[])
    assert guarantees() == ["at_least_once"]
