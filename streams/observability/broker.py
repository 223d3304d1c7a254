"""Broker connectivity, consumer group state and consumer lag, read from the cluster.

Every `interval` seconds a `BrokerWatch` asks the cluster for the metadata of the app's
topics (the connectivity probe), then for the group's state, its committed offsets and the
topics' log end offsets. Lag per topic partition is the log end offset minus the committed
offset; a partition without a committed offset counts from its log start, where the group
would begin (`auto.offset.reset=earliest`).

The numbers come from the broker, not from the worker's own position, so they stay right
while this worker is paused or busy, and every worker of the group reports the same lag.
The watch uses clients of its own, with the app's credentials, so it never stalls the
consumer that does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.sensors import Sensor
from mode import Service

from streams.kafka.client_options import client_options
from streams.observability.metrics import (
    BROKER_ERRORS,
    BROKER_LAST_ERROR,
    BROKER_LAST_ERROR_TIME,
    BROKER_UP,
    CONSUMER_LAG,
    CONSUMER_LAG_UPDATED,
    GROUP_MEMBERS,
    GROUP_STATE,
    GROUP_STATES,
    replace_samples,
)
from streams.observability.progress import AgentProgress

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
DEFAULT_TIMEOUT = 5.0
#: Probes per round before the cluster counts as down (one per broker of a 3-node cluster).
PROBE_ATTEMPTS = 3


def partition_lag(
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int | None],
    beginnings: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Lag of each partition in `ends`: end offset minus where the group resumes.

    The group resumes at its committed offset, or at the log start when it has none (or
    when retention already deleted the committed position).
    """
    lag = {}
    for tp, end in ends.items():
        start = beginnings.get(tp, 0)
        offset = committed.get(tp)
        position = start if offset is None or offset < 0 else max(offset, start)
        lag[tp] = max(end - position, 0)
    return lag


def group_state(description: Mapping[str, Any]) -> tuple[str, int]:
    """(state, member count) from one group of a DescribeGroups response."""
    state = description.get("state") or "Unknown"
    return (state if state in GROUP_STATES else "Unknown",
            len(description.get("members") or ()))


def error_text(exc: BaseException, timeout: float) -> str:
    """`Class: message`, without repeating the class (aiokafka's errors name themselves)."""
    name, text = type(exc).__name__, str(exc)
    if isinstance(exc, TimeoutError) and not text:
        text = f"no answer within {timeout:g}s"
    return text if text.startswith(name) else f"{name}: {text}"


class BrokerWatch(Sensor):
    """Probes the cluster and refreshes group state and lag on an interval.

    A Faust sensor only for its life cycle: the app starts its sensors first and stops
    them last, so the watch reports connectivity for the worker's whole run.
    """

    def __init__(self, app: Any, *, interval: float = DEFAULT_INTERVAL,
                 timeout: float = DEFAULT_TIMEOUT, progress: AgentProgress | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.progress = progress
        self.interval = interval
        self.timeout = timeout
        #: None until the first probe answered or failed.
        self.connected: bool | None = None
        self.last_error: str | None = None
        self.down_since: float | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    def problem(self) -> str | None:
        """Why the broker connection keeps the worker from being ready (None when fine)."""
        if self.connected is None:
            return "broker connectivity not checked yet"
        if self.connected:
            return None
        since = max(time.monotonic() - (self.down_since or time.monotonic()), 0)
        return f"Kafka cluster unreachable for {since:.0f}s ({self.last_error})"

    @Service.task
    async def _watch(self) -> None:
        failed = False
        while not self.should_stop:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Metrics must never stop the worker; say so once, not every round.
                log.log(logging.DEBUG if failed else logging.WARNING,
                        "refreshing broker metrics failed", exc_info=True)
                failed = True
            await self.sleep(self.interval)

    async def on_stop(self) -> None:
        await self._close_clients()

    async def refresh(self) -> None:
        """One probe; on success also the group state and the lag."""
        try:
            partitions = await self._probe_with_retries()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._on_down(exc)
            return
        self._on_up()
        try:
            await asyncio.wait_for(self._refresh_group(partitions), self.timeout * 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The cluster answered but the group is not readable yet (coordinator loading,
            # group being created): keep the last lag, try again next round.
            log.debug("consumer group %s not readable: %s", self.group_id,
                      error_text(exc, self.timeout))

    @property
    def group_id(self) -> str:
        return str(self.app.conf.id)

    def lag_topics(self) -> list[str]:
        """Topics whose offsets the app commits: its agents' sources, not changelogs."""
        acking = set(self.app.topics.acking_topics)
        return sorted(acking - set(self.app.tables.changelog_topics))

    async def _probe_with_retries(self) -> list[TopicPartition]:
        """Probe up to `PROBE_ATTEMPTS` times, each with fresh clients after a failure.

        A client sends to a broker picked from its last metadata, which may be one that
        just stopped; a fresh client bootstraps from any listed server that answers. All
        attempts together take at most twice the timeout.
        """
        deadline = time.monotonic() + self.timeout * 2
        for attempt in range(1, PROBE_ATTEMPTS + 1):
            try:
                return await asyncio.wait_for(self._probe(), deadline - time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                await self._close_clients()
                if attempt == PROBE_ATTEMPTS or time.monotonic() >= deadline:
                    raise
        raise AssertionError("unreachable")

    async def _probe(self) -> list[TopicPartition]:
        """Metadata of the app's topics: answers only if a broker is reachable."""
        admin, _ = await self._clients()
        described = await admin.describe_topics(self.lag_topics())
        return [TopicPartition(t["topic"], p["partition"])
                for t in described if not t["error_code"] for p in t["partitions"]]

    async def _refresh_group(self, partitions: list[TopicPartition]) -> None:
        admin, offsets = await self._clients()
        (response,) = await admin.describe_consumer_groups([self.group_id])
        groups = response.to_object()["groups"]
        state, members = group_state(groups[0] if groups else {})
        self._set_group(state, members)
        if not partitions:
            replace_samples(CONSUMER_LAG, {})
            return
        committed = await admin.list_consumer_group_offsets(
            self.group_id, partitions=partitions)
        ends = await offsets.end_offsets(partitions)
        beginnings = await offsets.beginning_offsets(partitions)
        committed_offsets = {tp: meta.offset for tp, meta in committed.items()}
        lag = partition_lag(ends, committed_offsets, beginnings)
        replace_samples(CONSUMER_LAG, {(tp.topic, str(tp.partition)): value
                                       for tp, value in lag.items()})
        now = time.time()
        CONSUMER_LAG_UPDATED.set(now)
        if self.progress is not None:
            self.progress.update(ends, committed_offsets, lag, now)

    def _set_group(self, state: str, members: int | None) -> None:
        for name in GROUP_STATES:
            GROUP_STATE.labels(name).set(1 if name == state else 0)
        if members is not None:
            GROUP_MEMBERS.set(members)

    def _on_up(self) -> None:
        if self.connected is False:
            log.warning("Kafka cluster reachable again after %.0fs",
                        time.monotonic() - (self.down_since or time.monotonic()))
        self.connected = True
        self.down_since = None
        BROKER_UP.set(1)

    async def _on_down(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.last_error = error_text(exc, self.timeout)
        if self.connected is not False:
            self.down_since = time.monotonic()
            log.warning("Kafka cluster unreachable: %s", self.last_error)
        self.connected = False
        BROKER_UP.set(0)
        BROKER_ERRORS.labels(name).inc()
        replace_samples(BROKER_LAST_ERROR, {(name,): 1})
        BROKER_LAST_ERROR_TIME.set(time.time())
        self._set_group("Unknown", None)
        # Fresh clients next round: a client whose bootstrap failed does not recover.
        await self._close_clients()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """The watch's admin client and group-less consumer, started on first use."""
        if self._admin is None or self._offsets is None:
            options = app_client_options(self.app, self.timeout, purpose="monitoring")
            admin = AIOKafkaAdminClient(**options)
            offsets = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
            try:
                await admin.start()
                await offsets.start()
            except BaseException:
                await _close_quietly(admin, offsets)
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def _close_clients(self) -> None:
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        await _close_quietly(admin, offsets)


def app_client_options(app: Any, timeout: float, *, purpose: str) -> dict[str, Any]:
    """aiokafka options for a side client of the app: its settings' brokers, TLS and SASL,
    a client id naming `purpose`, requests bounded by `timeout`."""
    return client_options(app.platform_settings, client_id=f"{app.conf.id}-{purpose}",
                          request_timeout_ms=int(timeout * 1000))


async def _close_quietly(*clients: Any) -> None:
    for client in clients:
        if client is None:
            continue
        close = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
        with contextlib.suppress(Exception):
            await asyncio.wait_for(close(), 5)
