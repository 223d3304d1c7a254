"""Whether each agent has caught up: its group committed every record up to the end
offsets last read from the cluster (lag 0 on every partition of its topic).

This is what a test or a deploy script waits on after publishing: the numbers come from
the cluster (`BrokerWatch`, every 5 s), so they survive restarts, and every worker of the
group gives the same answer. `GET /api/agents` answers, per agent::

    {"agents": [{"agent": "agents.orders.count_orders", "topic": "orders",
                 "caught_up": true, "lag": 0,
                 "partitions": [{"partition": 0, "end_offset": 120, "committed": 120,
                                 "lag": 0}, ...],
                 "updated_at": "2026-01-01T12:00:05.123456+00:00",
                 "updated_at_epoch": 1767268805.123456}]}

`updated_at` is when the offsets were read: a caller that published records at time T
waits for `caught_up` with `updated_at` after T (or end offsets past its own). Before the
first reading `caught_up` is false and `updated_at` null. The gauges
`streams_agent_caught_up{agent,topic}` and `streams_agent_lag{agent,topic}` carry the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from faust.web import Request, Response, View

from streams.observability.metrics import AGENT_CAUGHT_UP, AGENT_LAG, replace_samples

__all__ = ["AGENT_CAUGHT_UP", "AGENT_LAG", "AgentProgress", "register_progress"]

@dataclass(frozen=True)
class PartitionOffsets:
    end_offset: int
    committed: int | None
    lag: int


class AgentProgress:
    """The latest offsets of the agents' topics and what they say per agent."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.offsets: dict[TopicPartition, PartitionOffsets] = {}
        self.updated: float | None = None

    def update(self, ends: Mapping[TopicPartition, int],
               committed: Mapping[TopicPartition, int | None],
               lag: Mapping[TopicPartition, int], at: float) -> None:
        """Record one reading of the cluster (called by `BrokerWatch`) and set the gauges."""
        self.offsets = {tp: PartitionOffsets(end, committed.get(tp), lag.get(tp, 0))
                        for tp, end in ends.items()}
        self.updated = at
        report = self.report()
        replace_samples(AGENT_CAUGHT_UP, {(a["agent"], a["topic"]): int(a["caught_up"])
                                          for a in report})
        replace_samples(AGENT_LAG, {(a["agent"], a["topic"]): a["lag"] for a in report})

    def report(self) -> list[dict[str, Any]]:
        """One entry per agent of the app, as `GET /api/agents` gives it."""
        when = None if self.updated is None else datetime.fromtimestamp(self.updated, UTC)
        entries = []
        for agent in getattr(self.app, "batch_agents", []):
            partitions = sorted((tp.partition, offsets) for tp, offsets in self.offsets.items()
                                if tp.topic == agent.topic)
            lag = sum(offsets.lag for _, offsets in partitions)
            entries.append({
                "agent": agent.name,
                "topic": agent.topic,
                "caught_up": bool(partitions) and lag == 0,
                "lag": lag,
                "partitions": [{"partition": number, "end_offset": offsets.end_offset,
                                "committed": offsets.committed, "lag": offsets.lag}
                               for number, offsets in partitions],
                "updated_at": None if when is None else when.isoformat(),
                "updated_at_epoch": self.updated,
            })
        return entries


def register_progress(app: Any) -> AgentProgress:
    """Serve the agents' progress at `GET /api/agents` (called by `install_monitoring`)."""
    progress = AgentProgress(app)

    @app.page("/api/agents")
    class AgentsView(View):
        """Per agent: caught up or not, lag, end and committed offsets per partition."""

        async def get(self, request: Request) -> Response:
            return self.json({"agents": progress.report()})

    return progress
