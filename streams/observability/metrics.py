"""Prometheus metrics of the platform: every metric is defined here, once.

The metrics count for the whole process. Importing this module registers nothing:
`register_metrics(registry)` exposes them in a `CollectorRegistry` (prometheus_client's
default one unless `create_app(registry=...)` or `Publisher(registry=...)` name another),
and `/metrics` serves the registry its app was built with. The guarantee metrics read the
app itself, so `create_app` exposes them for that app (`expose_guarantee`).

Labels are bounded: `topic` takes the topics a process writes to (a deployment has a few),
`error` takes exception class names, which form a closed set.

Producer side (`Publisher`, the producer service and the produce CLI):

- `streams_producer_messages_total{topic}`: records acknowledged by Kafka.
- `streams_producer_bytes_total{topic}`: key + value bytes of acknowledged records.
- `streams_producer_send_latency_seconds{topic}`: from `publish` to the acknowledgement,
  including retries.
- `streams_producer_records_per_request`: records in one `publish_many` call or HTTP request.
- `streams_producer_errors_total{topic,error}`: records given up on, by exception class.
- `streams_producer_retries_total{topic}`: attempts after the first.

Consumer side (batch agents):

- `streams_consumer_messages_total{agent,topic}`: records whose batch finished (handled or
  dead-lettered) and was acknowledged.
- `streams_consumer_buffer_full_total{topic}`: fetching of a partition paused for a full agent
  buffer (STREAM_BUFFER_SIZE).
- `streams_consumer_batch_size{agent}`: records per batch handed to the handler.
- `streams_consumer_batch_seconds{agent}`: handler time per batch, retries included.
- `streams_consumer_retries_total{agent}`: handler attempts after the first, transient
  failures not included.
- `streams_consumer_transient_retries_total{agent}`: handler calls repeated after a
  transient failure (`RetryableError` or a type the agent declares transient).
- `streams_consumer_transient_waiting{agent}`: batches of the agent waiting on a transient
  failure now (their partitions are paused).
- `streams_consumer_dead_letters_total{topic,error}`: records sent to `<topic>.dlq`.
- `streams_partitioner_mismatch_total{topic,matches}`: records dead-lettered because their
  key is not on the partition the table's key partitioner gives it, by the hash that does
  put it there (`murmur2`, `crc32`, `fnv1a`; a record can match several; `none`).

Worker state (fed by the sensors `install_monitoring` adds; `partition` takes partition
numbers, `state` Kafka's group states, `role` active/standby, `kind` active/standby). Lag,
group state and members are read from the cluster: every worker of a group reports the
same values (aggregate them with `max by (topic, partition)`).

- `streams_consumer_commit_seconds`: time of an offset commit that moved an offset.
- `streams_consumer_lag{topic,partition}`: log end offset minus the group's committed
  offset (the log start when none), refreshed every 5 s.
- `streams_consumer_lag_updated_timestamp_seconds`: when the lag was last read.
- `streams_agent_caught_up{agent,topic}`: 1 when the group committed every record of the
  agent's topic up to the end offsets last read (lag 0), else 0; also at `GET /api/agents`
  (streams/observability/progress.py).
- `streams_agent_lag{agent,topic}`: the agent's topic's lag summed over its partitions.
- `streams_consumer_group_state{state}`: 1 for the group's current state, 0 for the others.
- `streams_consumer_group_members`: members of the app's consumer group.
- `streams_partitions_assigned{topic,role}`: partitions assigned to this worker.
- `streams_partition_assigned{topic,partition}`: 1 for each active partition this worker
  owns (streams/observability/assignment.py; also at `GET /api/assignment`).
- `streams_rebalances_total`: rebalances this worker took part in.
- `streams_rebalancing`: 1 while a rebalance (table recovery included) is in progress.
- `streams_rebalance_seconds`: rebalance duration, from revocation to recovered tables.
- `streams_table_keys{table}`: keys in the table partitions this worker serves.
- `streams_table_keys_updated_timestamp_seconds`: Unix time the keys were last counted.
- `streams_table_recovery_remaining{table,kind}`: changelog records still to be read.
- `streams_table_recovering`: 1 while active table partitions are being restored.
- `streams_table_recovery_remaining_records{table,partition,kind}`: changelog records
  still to be read per table partition (`streams/state/recovery.py`).
- `streams_table_recovery_records_total{table,partition,kind}`: changelog records applied
  to the worker's table partitions: `active` while restoring partitions it serves,
  `standby` while keeping standby replicas warm.
- `streams_tables_recovered`: 1 when the active table partitions are up to date with
  their changelogs (no rebalance or recovery running), else 0.
- `streams_broker_up`: 1 if the cluster answered the last connectivity probe (every 5 s).
- `streams_broker_errors_total{error}`: failed probes, by exception class.
- `streams_broker_last_error{error}`: 1 for the class of the latest failed probe.
- `streams_broker_last_error_timestamp_seconds`: Unix time of the latest failed probe.

Processing guarantee (fed by `streams/processing/transactions.py`):

- `streams_processing_guarantee_info{guarantee,isolation_level}`: PROCESSING_GUARANTEE and
  the isolation level the worker's consumer really uses.
- `streams_transactional_producer{transactional_id}`: 1 per started transactional producer
  (exactly_once: one per assigned partition).
- `streams_transactions_total{outcome}`: batch-part transactions `committed` or `aborted`.
- `streams_source_refetches_total`: times a source partition was seeked back because the
  fetcher skipped records (streams.processing.fetch_order).
- `streams_source_records_dropped_total{reason}`: source records dropped unprocessed,
  `committed_already` (delivered again) or `after_missing` (after a hole, until it is
  fetched again).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

#: Label values of one series, in the order the metric declares its labels.
Labels = TypeVar("Labels", bound=tuple[str, ...])

#: Consumer group states of the classic protocol; anything else is reported as "Unknown".
GROUP_STATES = ("Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead",
                "Unknown")


# Defined outside any registry: `register_metrics` puts them in one.
def _counter(name: str, documentation: str, labelnames: Sequence[str] = (),
            **kwargs: Any) -> Counter:
    return Counter(name, documentation, labelnames, registry=None, **kwargs)


def _gauge(name: str, documentation: str, labelnames: Sequence[str] = (),
          **kwargs: Any) -> Gauge:
    return Gauge(name, documentation, labelnames, registry=None, **kwargs)


def _histogram(name: str, documentation: str, labelnames: Sequence[str] = (),
              **kwargs: Any) -> Histogram:
    return Histogram(name, documentation, labelnames, registry=None, **kwargs)


PRODUCER_MESSAGES = _counter(
    "streams_producer_messages_total", "Records acknowledged by Kafka", ["topic"]
)
PRODUCER_BYTES = _counter(
    "streams_producer_bytes_total", "Key and value bytes of acknowledged records", ["topic"]
)
PRODUCER_SEND_LATENCY = _histogram(
    "streams_producer_send_latency_seconds",
    "Time from publish to acknowledgement, retries included",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PRODUCER_RECORDS_PER_REQUEST = _histogram(
    "streams_producer_records_per_request",
    "Records in one publish_many call or HTTP produce request",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
PRODUCER_ERRORS = _counter(
    "streams_producer_errors_total", "Records that could not be published", ["topic", "error"]
)
PRODUCER_RETRIES = _counter(
    "streams_producer_retries_total", "Publish attempts after the first", ["topic"]
)

CONSUMER_MESSAGES = _counter(
    "streams_consumer_messages_total", "Records processed and acknowledged", ["agent", "topic"]
)
CONSUMER_BUFFER_FULL = _counter(
    "streams_consumer_buffer_full_total",
    "Times fetching of a partition paused because its agent's buffer was full "
    "(STREAM_BUFFER_SIZE); each pause drops what the consumer had prefetched",
    ["topic"],
)
CONSUMER_BATCH_SIZE = _histogram(
    "streams_consumer_batch_size", "Records per batch handed to the handler", ["agent"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 10000),
)
CONSUMER_BATCH_SECONDS = _histogram(
    "streams_consumer_batch_seconds", "Handler time per batch, retries included", ["agent"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_RETRIES = _counter(
    "streams_consumer_retries_total", "Handler attempts after the first, transient failures "
    "not included", ["agent"]
)
CONSUMER_TRANSIENT_RETRIES = _counter(
    "streams_consumer_transient_retries_total",
    "Handler calls repeated after a transient failure", ["agent"]
)
CONSUMER_TRANSIENT_WAITING = _gauge(
    "streams_consumer_transient_waiting",
    "Batches waiting on a transient failure now (their partitions paused)", ["agent"]
)
DEAD_LETTERS = _counter(
    "streams_consumer_dead_letters_total", "Records sent to the dead-letter topic",
    ["topic", "error"],
)
PARTITIONER_MISMATCHES = _counter(
    "streams_partitioner_mismatch_total",
    "Records dead-lettered because their key is not on the partition the table's key "
    "partitioner gives it, by the hash that places it there",
    ["topic", "matches"],
)
SOURCE_REFETCHES = _counter(
    "streams_source_refetches_total",
    "Times a source partition was seeked back because records were not delivered in order",
)
SOURCE_RECORDS_DROPPED = _counter(
    "streams_source_records_dropped_total",
    "Source records dropped unprocessed because they were committed already (delivered "
    "again) or came after records not delivered yet", ["reason"],
)

TABLE_RECOVERY_RECORDS = _counter(
    "streams_table_recovery_records_total",
    "Changelog records applied to table partitions, by kind (active: restoring partitions "
    "this worker serves; standby: keeping replicas warm)",
    ["table", "partition", "kind"],
)
TABLE_RECOVERY_REMAINING_RECORDS = _gauge(
    "streams_table_recovery_remaining_records",
    "Changelog records still to be read, per table partition and kind",
    ["table", "partition", "kind"],
)
TABLES_RECOVERED = _gauge(
    "streams_tables_recovered",
    "1 when the active table partitions are up to date with their changelogs, else 0",
)
PARTITION_ASSIGNED = _gauge(
    "streams_partition_assigned",
    "1 for each partition this worker owns (active), by topic and partition",
    ["topic", "partition"],
)
PARTITIONS_ASSIGNED = _gauge(
    "streams_partitions_assigned",
    "Partitions assigned to this worker, by topic and role (active or standby)",
    ["topic", "role"],
)
REBALANCES = _counter(
    "streams_rebalances_total", "Consumer group rebalances this worker took part in"
)
REBALANCING = _gauge(
    "streams_rebalancing", "1 while a rebalance (including table recovery) is in progress"
)
REBALANCE_SECONDS = _histogram(
    "streams_rebalance_seconds",
    "Duration of a rebalance, from revocation to the end of table recovery",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
COMMIT_SECONDS = _histogram(
    "streams_consumer_commit_seconds",
    "Time of an offset commit that moved at least one offset (producer flush included)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TABLE_KEYS = _gauge(
    "streams_table_keys", "Keys of the table in the partitions this worker serves", ["table"]
)
TABLE_KEYS_UPDATED = _gauge(
    "streams_table_keys_updated_timestamp_seconds",
    "Unix time the table keys were last counted",
)
TABLE_RECOVERY_REMAINING = _gauge(
    "streams_table_recovery_remaining",
    "Changelog records still to be read before the table is up to date, by kind "
    "(active: partitions this worker serves; standby: replicas it keeps warm)",
    ["table", "kind"],
)
TABLE_RECOVERING = _gauge(
    "streams_table_recovering", "1 while the worker restores active table partitions"
)
BROKER_UP = _gauge(
    "streams_broker_up", "1 if the cluster answered the last connectivity probe, else 0"
)
BROKER_ERRORS = _counter(
    "streams_broker_errors_total", "Failed connectivity probes, by exception class", ["error"]
)
BROKER_LAST_ERROR = _gauge(
    "streams_broker_last_error",
    "1 for the exception class of the most recent failed probe (one series at a time)",
    ["error"],
)
BROKER_LAST_ERROR_TIME = _gauge(
    "streams_broker_last_error_timestamp_seconds", "Unix time of the most recent failed probe"
)
GROUP_STATE = _gauge(
    "streams_consumer_group_state",
    "1 for the consumer group's current state, 0 for the others", ["state"],
)
GROUP_MEMBERS = _gauge("streams_consumer_group_members", "Members of the app's consumer group")
CONSUMER_LAG = _gauge(
    "streams_consumer_lag",
    "Log end offset minus the group's committed offset (log start when none committed)",
    ["topic", "partition"],
)
CONSUMER_LAG_UPDATED = _gauge(
    "streams_consumer_lag_updated_timestamp_seconds",
    "Unix time the lag was last read from the cluster",
)
AGENT_CAUGHT_UP = _gauge(
    "streams_agent_caught_up",
    "1 when the agent's group committed every record up to the end offsets last read from "
    "the cluster (lag 0 on all partitions of its topic), else 0", ["agent", "topic"])
AGENT_LAG = _gauge(
    "streams_agent_lag",
    "Records of the agent's topic not yet committed by its group, at the last reading",
    ["agent", "topic"])
TRANSACTIONS = _counter(
    "streams_transactions", "Batch transactions ended, by outcome (committed, aborted)",
    ["outcome"])


#: (guarantee, isolation level of the running consumer, started transactional ids)
GuaranteeState = tuple[str, str, list[str]]


class GuaranteeCollector(Collector):
    """`streams_processing_guarantee_info` and `streams_transactional_producer`, read from
    the worker when scraped (`source` is set by `streams.processing.transactions.install`).
    """

    def __init__(self, source: Callable[[], GuaranteeState]) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily(
            "streams_processing_guarantee",
            "Processing guarantee and the isolation level of the worker's consumer")
        producers = GaugeMetricFamily(
            "streams_transactional_producer",
            "1 for each started transactional producer (one per assigned partition)",
            labels=["transactional_id"])
        guarantee, isolation_level, transactional_ids = self.source()
        info.add_metric([], {"guarantee": guarantee, "isolation_level": isolation_level})
        for transactional_id in transactional_ids:
            producers.add_metric([transactional_id], 1)
        yield info
        yield producers


_REGISTERED: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()
_GUARANTEES: weakref.WeakKeyDictionary[CollectorRegistry, GuaranteeCollector] = (
    weakref.WeakKeyDictionary())


def expose_guarantee(registry: CollectorRegistry, source: Callable[[], GuaranteeState]) -> None:
    """Show the guarantee metrics of the app `source` reads in `registry`.

    One app per registry: an app created later with the same registry (tests, several apps in
    one process) takes the place of the earlier one there; give each its own registry to see
    both.
    """
    previous = _GUARANTEES.pop(registry, None)
    if previous is not None:
        registry.unregister(previous)
    collector = GuaranteeCollector(source)
    registry.register(collector)
    _GUARANTEES[registry] = collector


def register_metrics(registry: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """Expose every platform metric in `registry` (once; later calls do nothing)."""
    if registry not in _REGISTERED:
        for collector in _collectors():
            registry.register(collector)
        _REGISTERED.add(registry)
    return registry


def _collectors() -> Iterator[Collector]:
    """Every metric defined in this module."""
    for value in globals().values():
        if isinstance(value, Counter | Gauge | Histogram):
            yield value




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
