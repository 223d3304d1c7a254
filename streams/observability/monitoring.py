"""Worker monitoring: `install_monitoring(app)` and what `/metrics` and `/ready` read.

`create_app` calls `install_monitoring`, which adds four Faust sensors to the app (they
start with it, before the consumer, and stop after it):

- `PlatformSensor` (streams/observability/sensor.py): rebalances and commit latency;
- `WorkerStateWatch` (streams/observability/state.py): assigned partitions, table keys and
  recovery progress, every second;
- `BrokerWatch` (streams/observability/broker.py): broker connectivity, consumer group state
  and consumer lag per partition, every 5 seconds, and from it whether each agent has
  caught up (streams/observability/progress.py, `GET /api/agents`);
- `RecoveryProgress` (streams/state/recovery.py): table recovery per partition, active and
  standby, in metrics and log lines.

Batch agents count processed records, batches, retries and dead letters themselves
(streams/observability/metrics.py). `GET /metrics` serves the registry the app was created
with (`create_app(registry=...)`, prometheus_client's default one unless told).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from streams.observability.broker import BrokerWatch
from streams.observability.progress import register_progress
from streams.observability.sensor import PlatformSensor
from streams.observability.state import WorkerStateWatch
from streams.state.recovery import DEFAULT_LOG_INTERVAL, RecoveryProgress

__all__ = ["install_monitoring", "metrics_page", "monitoring_problems", "prometheus_text"]

_ATTRIBUTE = "platform_broker_watch"


def install_monitoring(app: Any, *, recovery_log_interval: float = DEFAULT_LOG_INTERVAL) -> None:
    """Add the platform's sensors to `app` (a Faust app not started yet).

    `recovery_log_interval`: seconds between the progress lines of a table restore.
    """
    if getattr(app, _ATTRIBUTE, None) is not None:
        return  # installed already: sensors added twice would count everything twice
    watch = BrokerWatch(app, progress=register_progress(app))
    app.sensors.add(PlatformSensor())
    app.sensors.add(WorkerStateWatch(app))
    app.sensors.add(RecoveryProgress(app, log_interval=recovery_log_interval))
    app.sensors.add(watch)
    setattr(app, _ATTRIBUTE, watch)


def monitoring_problems(app: Any) -> list[str]:
    """Readiness problems monitoring knows of: the cluster not answering (or not asked)."""
    watch: BrokerWatch | None = getattr(app, _ATTRIBUTE, None)
    problem = watch.problem() if watch is not None else None
    return [problem] if problem else []


def prometheus_text(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """`registry` in Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics_page(view: Any) -> Any:
    """The `/metrics` response of a Faust view: the app's registry."""
    body, content_type = prometheus_text(view.app.metrics_registry)
    return view.bytes(body, headers={"Content-Type": content_type})
