"""Prometheus metrics of a worker's state: group, partitions, tables, broker, lag.

The names are listed, with the producer and batch metrics, in `streams/observability/metrics.py`'s
docstring. Labels stay bounded: `topic` takes the app's own topics, `partition` their
partition numbers, `table` the app's tables, `error` exception class names and `state` the
consumer group states Kafka defines; never keys or offsets.

Group-wide numbers (lag, group state, members) are read from the cluster, so every worker
of a group reports the same values: aggregate them with `max by (topic, partition)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

#: Label values of one series, in the order the metric declares its labels.
Labels = TypeVar("Labels", bound=tuple[str, ...])

#: Consumer group states of the classic protocol; anything else is reported as "Unknown".
GROUP_STATES = ("Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead",
                "Unknown")

PARTITIONS_ASSIGNED = Gauge(
    "streams_partitions_assigned",
    "Partitions assigned to this worker, by topic and role (active or standby)",
    ["topic", "role"],
)
REBALANCES = Counter(
    "streams_rebalances_total", "Consumer group rebalances this worker took part in"
)
REBALANCING = Gauge(
    "streams_rebalancing", "1 while a rebalance (including table recovery) is in progress"
)
REBALANCE_SECONDS = Histogram(
    "streams_rebalance_seconds",
    "Duration of a rebalance, from revocation to the end of table recovery",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
COMMIT_SECONDS = Histogram(
    "streams_consumer_commit_seconds",
    "Time of an offset commit that moved at least one offset (producer flush included)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TABLE_KEYS = Gauge(
    "streams_table_keys", "Keys of the table in the partitions this worker serves", ["table"]
)
TABLE_KEYS_UPDATED = Gauge(
    "streams_table_keys_updated_timestamp_seconds",
    "Unix time the table keys were last counted",
)
TABLE_RECOVERY_REMAINING = Gauge(
    "streams_table_recovery_remaining",
    "Changelog records still to be read before the table is up to date, by kind "
    "(active: partitions this worker serves; standby: replicas it keeps warm)",
    ["table", "kind"],
)
TABLE_RECOVERING = Gauge(
    "streams_table_recovering", "1 while the worker restores active table partitions"
)
BROKER_UP = Gauge(
    "streams_broker_up", "1 if the cluster answered the last connectivity probe, else 0"
)
BROKER_ERRORS = Counter(
    "streams_broker_errors_total", "Failed connectivity probes, by exception class", ["error"]
)
BROKER_LAST_ERROR = Gauge(
    "streams_broker_last_error",
    "1 for the exception class of the most recent failed probe (one series at a time)",
    ["error"],
)
BROKER_LAST_ERROR_TIME = Gauge(
    "streams_broker_last_error_timestamp_seconds", "Unix time of the most recent failed probe"
)
GROUP_STATE = Gauge(
    "streams_consumer_group_state",
    "1 for the consumer group's current state, 0 for the others", ["state"],
)
GROUP_MEMBERS = Gauge("streams_consumer_group_members", "Members of the app's consumer group")
CONSUMER_LAG = Gauge(
    "streams_consumer_lag",
    "Log end offset minus the group's committed offset (log start when none committed)",
    ["topic", "partition"],
)
CONSUMER_LAG_UPDATED = Gauge(
    "streams_consumer_lag_updated_timestamp_seconds",
    "Unix time the lag was last read from the cluster",
)


def replace_samples(gauge: Gauge, values: Mapping[Labels, float]) -> None:
    """Set a labelled gauge to exactly `values`: label sets not in it are removed.

    Partitions move between workers and topics come and go; a series left behind would
    report a number that is no longer measured.
    """
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    for metric in gauge.collect():
        for sample in metric.samples:
            measured = tuple(sample.labels.values())  # in the order the gauge declares them
            if measured not in values:
                gauge.remove(*measured)
