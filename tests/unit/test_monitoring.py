"""Monitoring logic without Kafka: lag arithmetic, group states, sensors, readiness reasons."""

from __future__ import annotations

from types import SimpleNamespace

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from streams import PerKeyTable, Settings, create_app
from streams.observability.broker import (
    BrokerWatch,
    app_client_options,
    error_text,
    group_state,
    partition_lag,
)
from streams.observability.metrics import replace_samples
from streams.observability.monitoring import (
    install_monitoring,
    monitoring_problems,
    prometheus_text,
)
from streams.observability.sensor import PlatformSensor
from streams.observability.state import partition_counts, recovery_remaining
from streams.web.probes import readiness_problems

TP0, TP1, TP2, TP3 = (TopicPartition("orders", p) for p in range(4))


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


class Totals(faust.Record, serializer="json"):
    count: int = 0


def memory_app(**env: str) -> faust.App:
    settings = Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "monitoring-unit", **env})
    table = PerKeyTable("totals", value_type=Totals, default=Totals, register=False)
    return create_app(settings, agents=[], tables=[table])


# --- lag --------------------------------------------------------------------------------------


def test_lag_is_end_minus_committed_or_log_start() -> None:
    ends = {TP0: 100, TP1: 50, TP2: 80, TP3: 10}
    committed = {TP0: 40, TP1: None, TP2: 5, TP3: -1}
    beginnings = {TP0: 0, TP1: 20, TP2: 30, TP3: 0}
    assert partition_lag(ends, committed, beginnings) == {
        TP0: 60,  # committed
        TP1: 30,  # nothing committed: the group starts at the log start
        TP2: 50,  # committed position deleted by retention: resumes at the log start
        TP3: 10,  # -1 is Kafka's "no offset"
    }


def test_lag_is_never_negative_and_zero_when_caught_up() -> None:
    assert partition_lag({TP0: 7}, {TP0: 7}, {TP0: 0}) == {TP0: 0}
    assert partition_lag({TP0: 7}, {TP0: 9}, {TP0: 0}) == {TP0: 0}


# --- group state and errors ----------------------------------------------------------------


def test_group_state_keeps_known_states_and_counts_members() -> None:
    assert group_state({"state": "Stable", "members": [{}, {}]}) == ("Stable", 2)
    assert group_state({"state": "PreparingRebalance", "members": []}) == (
        "PreparingRebalance", 0)
    assert group_state({"state": "Assigning", "members": [{}]}) == ("Unknown", 1)
    assert group_state({}) == ("Unknown", 0)


def test_error_text_names_the_class_once() -> None:
    assert error_text(NodeNotReadyError("node 1 not ready"), 5) == \
        "NodeNotReadyError: node 1 not ready"
    assert error_text(KafkaConnectionError("closed"), 5) == "KafkaConnectionError: closed"
    assert error_text(OSError("refused"), 5) == "OSError: refused"
    assert error_text(TimeoutError(), 5) == "TimeoutError: no answer within 5s"


def test_broker_watch_explains_why_it_is_not_ready() -> None:
    watch = BrokerWatch(SimpleNamespace())
    assert watch.problem() == "broker connectivity not checked yet"
    watch.connected, watch.last_error = False, "KafkaConnectionError: refused"
    watch.down_since = None
    assert watch.problem() == "Kafka cluster unreachable for 0s (KafkaConnectionError: refused)"
    watch.connected = True
    assert watch.problem() is None


def test_client_options_use_the_apps_brokers_and_credentials() -> None:
    app = memory_app(KAFKA_BOOTSTRAP_SERVERS="k1:9092,k2:9093", KAFKA_SASL_MECHANISM="PLAIN",
                     KAFKA_SASL_USERNAME="user", KAFKA_SASL_PASSWORD="secret")
    options = app_client_options(app, timeout=2, purpose="monitoring")
    assert options["bootstrap_servers"] == "k1:9092,k2:9093"
    assert options["request_timeout_ms"] == 2000
    assert (options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"]) == ("PLAIN", "user", "secret")


# --- metrics helpers and sensors ----------------------------------------------------------------


def test_replace_samples_drops_series_no_longer_measured() -> None:
    gauge = Gauge("streams_unit_replaced", "test gauge", ["topic", "partition"],
                  registry=None)
    replace_samples(gauge, {("a", "0"): 1, ("a", "1"): 2})
    replace_samples(gauge, {("a", "1"): 3, ("b", "0"): 4})
    samples = {tuple(s.labels.values()): s.value for m in gauge.collect() for s in m.samples}
    assert samples == {("a", "1"): 3, ("b", "0"): 4}


def test_partition_counts_by_topic_and_role() -> None:
    actives = {TP0, TP1, TopicPartition("app-totals-changelog", 0)}
    standbys = {TopicPartition("app-totals-changelog", 1)}
    assert partition_counts(actives, standbys) == {
        ("orders", "active"): 2,
        ("app-totals-changelog", "active"): 1,
        ("app-totals-changelog", "standby"): 1,
    }


def test_sensor_counts_and_times_rebalances() -> None:
    sensor = PlatformSensor()
    before = value("streams_rebalances_total") or 0
    count_before = value("streams_rebalance_seconds_count") or 0
    state = sensor.on_rebalance_start(SimpleNamespace())
    assert value("streams_rebalancing") == 1
    sensor.on_rebalance_end(SimpleNamespace(), state)
    assert value("streams_rebalances_total") == before + 1
    assert value("streams_rebalancing") == 0
    assert value("streams_rebalance_seconds_count") == count_before + 1


def test_sensor_times_only_commits_that_moved_an_offset() -> None:
    sensor = PlatformSensor()
    committed = {TP0: 5}
    consumer = SimpleNamespace(committed_offsets=lambda: dict(committed))
    before = value("streams_consumer_commit_seconds_count") or 0

    state = sensor.on_commit_initiated(consumer)
    sensor.on_commit_completed(consumer, state)  # nothing was acknowledged
    assert value("streams_consumer_commit_seconds_count") == before

    state = sensor.on_commit_initiated(consumer)
    committed[TP0] = 9
    sensor.on_commit_completed(consumer, state)
    assert value("streams_consumer_commit_seconds_count") == before + 1


# --- installed on an app ----------------------------------------------------------------------


def test_install_adds_the_sensors_once() -> None:
    app = memory_app()  # create_app installs monitoring
    kinds = sorted(type(s).__name__ for s in app.sensors)
    install_monitoring(app)
    assert sorted(type(s).__name__ for s in app.sensors) == kinds
    assert {"PlatformSensor", "WorkerStateWatch", "BrokerWatch"} <= set(kinds)


def test_not_ready_before_start_says_why() -> None:
    app = memory_app()
    assert monitoring_problems(app) == ["broker connectivity not checked yet"]
    reasons = readiness_problems(app)
    assert reasons[0] == "broker connectivity not checked yet"
    assert "tables are recovering from their changelogs" in reasons
    assert "no partitions assigned" in reasons


def test_recovery_remaining_lists_every_table_and_kind() -> None:
    app = memory_app()
    assert recovery_remaining(app) == {("totals", "active"): 0, ("totals", "standby"): 0}


def test_metrics_docstring_is_the_list_of_every_exported_metric() -> None:
    import streams.observability.metrics

    registry = CollectorRegistry()
    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "metrics-unit"}),
                     agents=[], tables=[], registry=registry)
    assert app.metrics_registry is registry
    body, content_type = prometheus_text(registry)
    assert content_type.startswith("text/plain")
    documented = {line.split("`")[1].split("{")[0].removesuffix("_total")
                  for line in (streams.observability.metrics.__doc__ or "").splitlines()
                  if line.startswith("- `streams_")}
    # prometheus_client names a counter family with or without `_total` depending on
    # whether it has samples yet, and adds `_created` gauges: compare the bare names.
    exported = {line.split()[2].removesuffix("_total") for line in body.decode().splitlines()
                if line.startswith("# TYPE streams_") and not line.split()[2].endswith("_created")}
    assert documented == exported
