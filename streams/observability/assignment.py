"""Which partitions this worker owns, and how long its rebalances took.

`GET /api/assignment` answers::

    {"worker": "http://127.0.0.1:8881", "assigned": [{"topic": "orders", "partition": 0}],
     "standby": [...], "generation": 7, "rebalances": 3, "rebalancing": false,
     "last_rebalance_s": 0.84}

`assigned` lists the active partitions (source topics and the changelogs of active table
partitions), `standby` the changelog partitions kept as standby replicas. The same
ownership is exported as `streams_partition_assigned{topic,partition}` (1 while owned), so
`sum by (topic, partition) (streams_partition_assigned) != 1` finds partitions with no owner
or with two.

Each rebalance is logged with its phases, measured from Faust's hooks:

- revoke: from the start of the rebalance (`on_rebalance_start`) until Faust has finished
  or given up the batches in hand and sent `on_partitions_revoked`;
- assign: until the new assignment is known (`on_partitions_assigned`);
- total: until streams resume (`on_rebalance_complete`, after table recovery).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from time import monotonic
from typing import Any

from faust.sensors import Sensor
from faust.web import Request, Response, View

from streams.observability.metrics import PARTITION_ASSIGNED

log = logging.getLogger(__name__)

_ATTRIBUTE = "platform_assignment"


@dataclass
class RebalanceTimes:
    """Monotonic times of one rebalance's phases (None: not reached yet)."""

    started: float
    revoked: float | None = None
    assigned: float | None = None


class AssignmentTracker(Sensor):  # type: ignore[misc]
    """Follows the worker's rebalances through Faust's sensor hooks and app signals."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app
        self.rebalances = 0
        self.last_rebalance_s: float | None = None
        self._current: RebalanceTimes | None = None

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self.rebalances += 1
        self._current = RebalanceTimes(started=monotonic())
        return {}

    async def on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        if self._current is not None:
            self._current.revoked = monotonic()

    async def on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        if self._current is not None:
            self._current.assigned = monotonic()
        _export(self.app.assignor.assigned_actives())

    async def on_complete(self, sender: Any, **_: Any) -> None:
        times, self._current = self._current, None
        if times is None:
            return
        ended = monotonic()
        self.last_rebalance_s = ended - times.started
        log.info(
            "rebalance #%d (generation %s) done in %.2fs: revoke %.2fs, assign %.2fs; "
            "active partitions: %s",
            self.rebalances, self.app.consumer_generation_id, self.last_rebalance_s,
            _phase(times.started, times.revoked), _phase(times.revoked, times.assigned),
            ", ".join(_names(self.app.assignor.assigned_actives())) or "none",
        )

    def snapshot(self) -> dict[str, Any]:
        """What `GET /api/assignment` answers."""
        assignor = self.app.assignor
        return {
            "worker": str(self.app.conf.canonical_url),
            "assigned": _pairs(assignor.assigned_actives()),
            "standby": _pairs(assignor.assigned_standbys()),
            "generation": self.app.consumer_generation_id,
            "rebalances": self.rebalances,
            "rebalancing": bool(self.app.rebalancing),
            "last_rebalance_s": (None if self.last_rebalance_s is None
                                 else round(self.last_rebalance_s, 3)),
        }


def register_assignment(app: Any) -> AssignmentTracker:
    """Track `app`'s assignment and serve it at `/api/assignment` (called by `create_app`)."""
    tracker = AssignmentTracker(app)
    app.sensors.add(tracker)
    app.on_partitions_revoked.connect(tracker.on_revoked)
    app.on_partitions_assigned.connect(tracker.on_assigned)
    app.on_rebalance_complete.connect(tracker.on_complete)
    setattr(app, _ATTRIBUTE, tracker)

    @app.page("/api/assignment")
    class AssignmentView(View):
        """This worker's partitions, group generation and rebalance count."""

        async def get(self, request: Request) -> Response:
            return self.json(tracker.snapshot())

    return tracker


def owns(app: Any, topic: str, partition: int) -> bool:
    """Whether `topic[partition]` is in this worker's active assignment right now."""
    return any(tp.topic == topic and tp.partition == partition
               for tp in app.assignor.assigned_actives())


def _export(actives: Iterable[Any]) -> None:
    PARTITION_ASSIGNED.clear()
    for tp in actives:
        PARTITION_ASSIGNED.labels(tp.topic, str(tp.partition)).set(1)


def _pairs(tps: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"topic": tp.topic, "partition": tp.partition}
            for tp in sorted(tps, key=lambda tp: (tp.topic, tp.partition))]


def _names(tps: Iterable[Any]) -> list[str]:
    return [f"{p['topic']}[{p['partition']}]" for p in _pairs(tps)]


def _phase(start: float | None, end: float | None) -> float:
    return end - start if start is not None and end is not None else float("nan")
