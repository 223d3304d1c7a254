"""Importing `streams` registers no codec: binding a windowed table does; `create_app`
points the guarantee metrics at the app being created.

(Metric definitions stay in prometheus_client's default registry from import, see
streams.observability.metrics.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY

from streams import Settings, create_app

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import faust.serializers.codecs as codecs
import streams, streams.app, streams.processing.transactions, streams.state.windows
print("streams_window_key" in codecs.codecs)
streams.create_app(streams.Settings.from_env({"TABLE_STORE": "memory"}), agents=[],
                   tables=[streams.WindowedTable("w", value_type=int, default=int,
                                                 window=streams.Tumbling(60),
                                                 register=False)])
print("streams_window_key" in codecs.codecs)
"""


def test_import_registers_no_codec_binding_a_windowed_table_does() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.splitlines() == ["False", "True"]


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
