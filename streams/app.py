"""The app factory: a Faust app configured from `Settings`, with the deployment's agents,
tables and web views bound to it.

`create_app` has no import side effects of its own: pass agents and tables explicitly
(tests do), or let it import the deployment's `agents/` and `tables/` modules, whose
declarations register themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import AIOKafkaClient
from mode.utils.objects import cached_property
from mode.utils.times import want_seconds
from prometheus_client import REGISTRY, CollectorRegistry

from streams._faust.app import FaustApp
from streams._faust.recovery import RestoreFirstTableManager
from streams._faust.versions import check_versions
from streams.deployments import import_deployment
from streams.errors import BrokerUnreachableError, SettingsError, UnverifiedDependencyError
from streams.gc_tuning import freeze_startup_objects, set_collection_thresholds
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.broker_reader import BrokerReader
from streams.kafka.client_options import client_options, faust_credentials
from streams.kafka.partitioner import Partitioner
from streams.observability.assignment import register_assignment
from streams.observability.logs import logging_config
from streams.observability.metrics import register_metrics
from streams.observability.monitoring import install_monitoring
from streams.processing.agents import DECLARED_AGENTS, BatchAgent
from streams.processing.consumer import BatchingTransport, ResumeCountingFlowControl
from streams.processing.transactions import install as install_transactions
from streams.processing.transactions import prepare_worker
from streams.settings import Settings
from streams.state.placement import table_partitioner
from streams.state.restore import install_bulk_restore
from streams.state.tables import DECLARED_TABLES, PerKeyTable
from streams.state.windows import DECLARED_WINDOWED_TABLES, WindowedTable
from streams.web.access import WORKER_OPEN_PATHS, AccessPolicy, protect
from streams.web.console import register_console
from streams.web.console._http import error_response
from streams.web.json_errors import http_errors_as_json
from streams.web.openapi import serve_openapi, worker_openapi
from streams.web.probes import register_views
from streams.web.routing import TableRouter

log = logging.getLogger(__name__)

DEPLOYMENT_PACKAGES = ("tables", "agents")
EXIT_BROKER_UNREACHABLE = 3
EXIT_SHUTDOWN_OVERDUE = 4
#: What shutdown may take after SHUTDOWN_TIMEOUT_S: commits, leaving the group, flushes.
SHUTDOWN_GRACE_S = 10.0
EXIT_UNVERIFIED_DEPENDENCIES = 2


class PlatformApp(FaustApp):
    """A Faust app that checks its dependency versions and that the cluster is reachable
    before it starts anything.

    Without the check, Faust retries an unreachable broker forever; an operator should get
    one line saying which servers did not answer and a non-zero exit instead.
    """

    platform_settings: Settings
    batch_agents: list[BatchAgent]
    platform_tables: list[PerKeyTable[Any] | WindowedTable[Any]]
    metrics_registry: CollectorRegistry

    async def on_first_start(self) -> None:
        try:
            warning = check_versions(
                allow_unverified=self.platform_settings.allow_unverified_dependencies)
        except UnverifiedDependencyError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_UNVERIFIED_DEPENDENCIES) from None
        if warning:
            log.warning("%s", warning)
        try:
            await check_broker(self.platform_settings)
        except BrokerUnreachableError as exc:
            # SystemExit passes through Faust's worker, which would print a traceback
            # for any Exception.
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_BROKER_UNREACHABLE) from None
        settings = self.platform_settings
        await ensure_topics(settings, [*self.source_topics(), *self.changelog_topics()])
        prepare_worker(self)
        await super().on_first_start()

    #: Faust's aiokafka transport, creating a consumer that hands batch-agent topics to
    #: their agents in bulk (see streams.processing.consumer).
    transport_class = BatchingTransport

    @property
    def shutdown_timeout_s(self) -> float:
        """SHUTDOWN_TIMEOUT_S: how long the batches in hand may take at a revoke or stop."""
        return self.platform_settings.shutdown_timeout_s

    @cached_property
    def broker_reader(self) -> BrokerReader:
        """Reads source partitions beside the group's fetching, for the order checks of
        `streams.processing.offset_order`; closed when the app stops."""
        return BrokerReader(self)

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.broker_reader.close()

    @cached_property
    def flow_control(self) -> ResumeCountingFlowControl:
        """Faust's flow control, counting resumes for the fetch loop's gate (see
        `BatchingConsumer.streams_resumed`)."""
        return ResumeCountingFlowControl(loop=self.loop)

    def source_topics(self) -> list[TopicSpec]:
        """Topics the agents read and dead-letter to; Faust creates only its internal ones."""
        settings = self.platform_settings
        names = sorted({name for agent in self.batch_agents for name in agent.topic_names()})
        return [TopicSpec(name, settings.topic_partitions, settings.topic_replication)
                for name in names]

    def changelog_topics(self) -> list[TopicSpec]:
        """The tables' changelog topics, configured as Faust would create them.

        Created here, before Faust starts: Faust creates them just before its consumer joins
        the group, and a topic the broker's metadata does not show yet is left out of the
        assignment ("Ignoring missing topic"); the table then refuses writes ("changelog
        topic has 0 partitions") until the next rebalance.
        """
        settings = self.platform_settings
        specs = []
        for table in self.platform_tables:
            topic = table.faust_table.changelog_topic
            flags = [flag for flag, on in (("compact", topic.compacting),
                                           ("delete", topic.deleting)) if on]
            config = {"cleanup.policy": ",".join(flags)} if flags else {}
            if topic.retention:
                config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
            config.update({key: str(value) for key, value in (topic.config or {}).items()})
            specs.append(TopicSpec(topic.get_topic_name(),
                                   topic.partitions or settings.topic_partitions,
                                   settings.topic_replication, config))
        return specs


class PlatformWorker(faust.Worker):
    """Faust's worker, logging at LOG_LEVEL rather than the CLI's `--loglevel` (WARN).

    Faust's terminal spinner is turned off: to spin on every log record it sets the root
    logger to DEBUG, so every debug call of Faust and aiokafka (several per message) builds
    a log record. That alone cost more than half of a batch agent's throughput.

    The worker process collects garbage less often than Python's default
    (GC_YOUNG_THRESHOLD, see streams.gc_tuning).
    """

    async def on_first_start(self) -> None:
        settings: Settings = self.app.platform_settings  # type: ignore[attr-defined]
        set_collection_thresholds(settings.gc_young_threshold)
        await super().on_first_start()

    async def on_startup_finished(self) -> None:
        settings: Settings = self.app.platform_settings  # type: ignore[attr-defined]
        if settings.gc_young_threshold:
            freeze_startup_objects()
        await super().on_startup_finished()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        settings: Settings = self.app.platform_settings  # type: ignore[attr-defined]
        logger.setLevel(settings.log_level)

    async def on_stop(self) -> None:
        """Shutdown has begun (SIGTERM, Ctrl-C): make sure the process ends.

        The batches in hand get SHUTDOWN_TIMEOUT_S; what follows (commits, leaving the
        group, flushing producers) waits on Kafka, and with the brokers gone it would wait
        for minutes. A timer ends the process SHUTDOWN_GRACE_S later in any case.
        """
        settings: Settings = self.app.platform_settings  # type: ignore[attr-defined]
        exit_after(settings.shutdown_timeout_s + SHUTDOWN_GRACE_S)
        await super().on_stop()


def exit_after(seconds: float) -> threading.Timer:
    """End the process with EXIT_SHUTDOWN_OVERDUE unless it ended within `seconds`."""

    def give_up() -> None:
        print(f"error: shutdown did not finish within {seconds:g}s (SHUTDOWN_TIMEOUT_S + "
              f"{SHUTDOWN_GRACE_S:g}s), likely waiting on Kafka; exiting now, work not "
              "committed is processed again after a restart", file=sys.stderr, flush=True)
        os._exit(EXIT_SHUTDOWN_OVERDUE)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    return timer


async def check_broker(settings: Settings) -> None:
    """Raise `BrokerUnreachableError` if no broker answers within the connect timeout.

    The message carries aiokafka's last error (refused, TLS verification, SASL
    authentication), which aiokafka only logs.
    """
    client = AIOKafkaClient(
        **client_options(settings,
                         request_timeout_ms=int(settings.broker_connect_timeout_s * 1000)))
    last_error = _LastError()
    quiet = logging.getLogger("aiokafka")
    propagate = quiet.propagate
    quiet.addHandler(last_error)
    quiet.propagate = False  # one line from us instead of aiokafka's retries
    try:
        await asyncio.wait_for(client.bootstrap(), settings.broker_connect_timeout_s)
    except Exception as exc:
        reason = last_error.message or type(exc).__name__
        raise BrokerUnreachableError(
            f"no Kafka broker answered at {settings.bootstrap_servers} within "
            f"{settings.broker_connect_timeout_s:g}s ({reason}); check "
            "KAFKA_BOOTSTRAP_SERVERS and the KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_* and "
            "KAFKA_SASL_* settings, or start a broker with `make kafka`"
        ) from None
    finally:
        quiet.removeHandler(last_error)
        quiet.propagate = propagate
        await client.close()


class _LastError(logging.Handler):
    """Keeps the message of the last error logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = " ".join(record.getMessage().split())  # one line


def discover_deployment(root: Path, modules: Sequence[str] = DEPLOYMENT_PACKAGES) -> None:
    """Import the deployment's modules; a package has all its modules imported.

    They are imported from `root` (the project folder), never from site-packages: the name
    `tables` is also PyTables'. A module that does not import raises `DeploymentError`
    naming it, before anything is created on the cluster.
    """
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for name in modules:
        import_deployment(name, f"DEPLOYMENT_MODULES (from {root})")


def ensure_data_dir(settings: Settings) -> None:
    """Create DATA_DIR (and its parents); `SettingsError` in one line if that fails."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"DATA_DIR={str(settings.data_dir)!r} cannot be created: "
                            f"{exc.strerror or exc}") from None


#: The largest record batch the worker's producer builds (below the broker's default
#: message.max.bytes, 1 MiB).
PRODUCER_BATCH_BYTES = 512 * 1024


def create_app(
    settings: Settings,
    *,
    agents: Sequence[BatchAgent] | None = None,
    tables: Sequence[PerKeyTable[Any] | WindowedTable[Any]] | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> PlatformApp:
    """Build the worker's Faust app.

    `agents`/`tables` default to everything declared (registered) so far, usually by
    `discover_deployment`. The platform metrics are exposed in `registry`, which
    `/metrics` serves.
    """
    ensure_data_dir(settings)
    app = PlatformApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        store="rocksdb://" if settings.table_store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        canonical_url=settings.web_url,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        processing_guarantee=settings.processing_guarantee,
        producer_acks=-1,
        # aiokafka holds one record batch per partition until its sender takes it: at
        # Faust's 16 KiB, a commit window's changelog (10,000 changes) went out as dozens
        # of batches per partition, each waiting for the one before (43-240 ms a window)
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # Faust's 4096 is below what one fetch brings of small records (1 MiB per
        # partition): the fetcher stopped at nearly every fetch (see
        # streams.processing.back_pressure), and a larger buffer lets it run ahead.
        stream_buffer_maxsize=settings.stream_buffer_size,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=settings.table_standby_replicas,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        autodiscover=False,
        logging_config=logging_config(settings.log_level, settings.log_format),
        Worker=PlatformWorker,
        Router=TableRouter,
        TableManager=RestoreFirstTableManager,
        # Faust's own sends without a partition (sinks, a handler's topic.send): keys
        # placed by KEY_PARTITIONER, as the platform's Publisher does.
        producer_partitioner=Partitioner(settings.key_partitioner_for),
    )
    app.platform_settings = settings
    app.metrics_registry = register_metrics(registry)
    declared: list[PerKeyTable[Any] | WindowedTable[Any]] = [*DECLARED_TABLES,
                                                             *DECLARED_WINDOWED_TABLES]
    app.platform_tables = list(declared if tables is None else tables)
    app.batch_agents = list(DECLARED_AGENTS if agents is None else agents)
    agent_topics = [agent.topic for agent in app.batch_agents]
    for table in app.platform_tables:
        table.bind(app, default_store=settings.table_store,
                   partitions=settings.topic_partitions,
                   key_partitioner=table_partitioner(table.name, table.source,
                                                     settings.key_partitioner_for,
                                                     agent_topics))
    for agent in app.batch_agents:
        agent.bind(app, settings)
    install_transactions(app)
    register_views(app)
    register_assignment(app)
    install_bulk_restore(app, threshold=settings.table_bulk_restore_min_records)
    install_monitoring(app, recovery_log_interval=settings.table_recovery_log_interval_s)
    policy = AccessPolicy.from_settings(settings, settings.web_host,
                                        open_paths=WORKER_OPEN_PATHS)
    web_app = cast(Any, app.web).web_app  # Faust's aiohttp application
    web_app.middlewares.insert(0, http_errors_as_json(error_response))
    protect(web_app, policy, error_response)
    serve_openapi(web_app.router, worker_openapi(settings.console_mode))
    register_console(app, policy)
    return app

