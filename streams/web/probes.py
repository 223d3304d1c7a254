"""The worker's web endpoints on Faust's web server (port 8881): health, readiness and
metrics here; `/api/tables` is `streams.web.table_routes`.
"""

from __future__ import annotations

from typing import Any

from faust.exceptions import ConsumerNotStarted
from faust.web import Request, Response, View

from streams.observability.monitoring import metrics_page, monitoring_problems
from streams.processing.transient import WAITING
from streams.state.placement import MISPLACED
from streams.web.table_routes import register_table_routes


def register_views(app: Any) -> None:
    """Add the health, readiness, metrics and table routes."""
    register_table_routes(app)

    @app.page("/health")
    class HealthView(View):
        """The process and its event loop answer."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus text format (the metric list is in streams/observability/metrics.py)."""

        async def get(self, request: Request) -> Response:
            return metrics_page(self)

    @app.page("/ready")
    class ReadyView(View):
        """Connected, partitions assigned, tables recovered, no agent waiting on a transient
        failure: 200; otherwise 503 and why."""

        async def get(self, request: Request) -> Response:
            reasons = readiness_problems(app)
            # Records dead-lettered because their producer partitions keys differently:
            # the worker is ready, but the operator should see it here.
            mismatches = MISPLACED.summary()
            detail: dict[str, Any] = {"partitioner_mismatches": mismatches} if mismatches else {}
            waits = WAITING.summary()
            if waits:  # which agent waits on what, on which partitions, since when
                detail["transient_waits"] = waits
            if reasons:
                return self.json({"ready": False, "reasons": reasons, **detail}, status=503)
            assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in app.consumer.assignment())
            return self.json({"ready": True, "assigned": assigned, **detail})


def readiness_problems(app: Any) -> list[str]:
    """What keeps the worker from serving correct state right now (empty when ready)."""
    reasons = monitoring_problems(app)
    if app.rebalancing:
        reasons.append("consumer group is rebalancing")
    recovery = app.tables.recovery
    if app.in_recovery or not recovery.completed.is_set():
        left = recovery.active_remaining_total()
        reasons.append("tables are recovering from their changelogs"
                       + (f" ({left} records left)" if left > 0 else ""))
    try:
        assigned = app.consumer.assignment()
    except ConsumerNotStarted:  # the web server starts before the consumer
        assigned = set()
    if not assigned:
        reasons.append("no partitions assigned")
    reasons.extend(WAITING.reasons())
    return reasons
