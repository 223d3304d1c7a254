"""A Faust sensor for what only Faust sees happen: rebalances and offset commits.

Faust calls sensors synchronously from its consumer and app (faust/sensors/base.py), so
each hook only does a few dictionary and metric operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import monotonic
from typing import Any, Protocol, runtime_checkable

from faust.sensors import Sensor

from streams.observability.metrics import (
    COMMIT_SECONDS,
    REBALANCE_SECONDS,
    REBALANCES,
    REBALANCING,
)


@runtime_checkable
class ShowsCommittedOffsets(Protocol):
    """A consumer that shows its committed offsets (streams._faust.consumer.HookedConsumer)."""

    def committed_offsets(self) -> Mapping[Any, int | None]: ...


class PlatformSensor(Sensor):
    """Counts rebalances and times them and the offset commits."""

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        REBALANCES.inc()
        REBALANCING.set(1)
        return {"time_start": monotonic()}

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        # Faust calls this once the new assignment is recovered, so the duration includes
        # table recovery: the time the worker could not serve.
        REBALANCE_SECONDS.observe(monotonic() - state["time_start"])
        REBALANCING.set(0)

    def on_commit_initiated(self, consumer: Any) -> Any:
        return monotonic(), committed_offsets(consumer)

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        # Faust runs a commit round every `broker_commit_interval` whether or not anything
        # was acknowledged; only rounds that moved an offset say how long a commit takes.
        started, before = state
        if before is None or committed_offsets(consumer) != before:
            COMMIT_SECONDS.observe(monotonic() - started)


def committed_offsets(consumer: Any) -> Mapping[Any, Any] | None:
    """A copy of the offsets the consumer last committed, by topic partition; None for a
    consumer that does not show them (every commit round is then timed)."""
    if isinstance(consumer, ShowsCommittedOffsets):
        return consumer.committed_offsets()
    return None
