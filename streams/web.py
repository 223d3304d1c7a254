"""The worker's JSON API on Faust's web server (port 8881).

`GET /api/tables/{table}/{key}` answers with the key's value; when another worker owns the
key's partition the request is forwarded there (Faust's `table_route`), so any worker
answers any key.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.web import Request, Response, View

from streams.monitoring import metrics_page, monitoring_problems
from streams.tables import PerKeyTable


def to_json(value: Any) -> Any:
    """A table value as JSON-ready data (Faust Records know their own representation)."""
    if isinstance(value, faust.Record):
        return value.asdict()
    return value


def error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message, "status": status}, status=status)


def register_views(app: Any) -> None:
    """Add the JSON API views for the app's platform tables."""
    tables: dict[str, PerKeyTable[Any]] = {t.name: t for t in app.platform_tables}

    for table in tables.values():
        _register_key_view(app, table)

    @app.page("/api/tables/{table}/{key}")
    class UnknownTableView(View):
        """Reached only for names no table view matched."""

        async def get(self, request: Request, table: str, key: str) -> Response:
            known = ", ".join(sorted(tables)) or "none"
            return error(self, 404, f"no table named {table!r} (tables: {known})")

    @app.page("/health")
    class HealthView(View):
        """The process and its event loop answer."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus text format (the metric list is in streams/metrics.py)."""

        async def get(self, request: Request) -> Response:
            return metrics_page(self)

    @app.page("/ready")
    class ReadyView(View):
        """Connected, partitions assigned, tables recovered: 200; otherwise 503 and why."""

        async def get(self, request: Request) -> Response:
            reasons = readiness_problems(app)
            if reasons:
                return self.json({"ready": False, "reasons": reasons}, status=503)
            assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in app.consumer.assignment())
            return self.json({"ready": True, "assigned": assigned})

    @app.page("/api/tables")
    class TablesView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"tables": [
                {"name": t.name,
                 "key_type": getattr(t.key_type, "__name__", str(t.key_type)),
                 "value_type": getattr(t.value_type, "__name__", str(t.value_type)),
                 "partitions": t.faust_table.partitions or app.conf.topic_partitions}
                for t in tables.values()
            ]})


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
    return reasons


def _register_key_view(app: Any, table: PerKeyTable[Any]) -> None:
    faust_table = table.faust_table

    class TableKeyView(View):
        @app.table_route(table=faust_table, match_info="key")
        async def get(self, request: Request, key: str) -> Response:
            try:
                typed_key = _parse_key(table, key)
            except ValueError as exc:
                return error(self, 400, str(exc))
            value = table.get(typed_key)
            if value is None:
                return error(self, 404, f"key {key!r} not found in table {table.name!r}")
            return self.json({"table": table.name, "key": typed_key, "value": to_json(value)})

    TableKeyView.__name__ = f"TableKeyView_{table.name}"
    app.page(f"/api/tables/{table.name}/{{key}}", name=f"table-{table.name}")(TableKeyView)


def _parse_key(table: PerKeyTable[Any], raw: str) -> Any:
    if table.key_type is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"key {raw!r} is not an integer, as table "
                             f"{table.name!r} expects") from None
    return raw
