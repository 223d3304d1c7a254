"""Caught-up per agent, from the end and committed offsets the cluster reported."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.observability.metrics import register_metrics
from streams.observability.progress import AgentProgress

REGISTRY = register_metrics(CollectorRegistry())


def app_with(*topics: str) -> SimpleNamespace:
    return SimpleNamespace(batch_agents=[SimpleNamespace(name=f"agents.{t}", topic=t)
                                         for t in topics])


def gauge(name: str, agent: str, topic: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"agent": agent, "topic": topic})


def test_an_agent_is_caught_up_when_every_partition_of_its_topic_has_lag_zero() -> None:
    progress = AgentProgress(app_with("prog-a", "prog-b"))
    a0, a1, b0 = (TopicPartition("prog-a", 0), TopicPartition("prog-a", 1),
                  TopicPartition("prog-b", 0))
    progress.update(ends={a0: 10, a1: 5, b0: 7}, committed={a0: 10, a1: 5, b0: 4},
                    lag={a0: 0, a1: 0, b0: 3}, at=1767268800.5)
    a, b = progress.report()
    assert (a["caught_up"], a["lag"], b["caught_up"], b["lag"]) == (True, 0, False, 3)
    assert a["partitions"] == [{"partition": 0, "end_offset": 10, "committed": 10, "lag": 0},
                               {"partition": 1, "end_offset": 5, "committed": 5, "lag": 0}]
    assert a["updated_at"] == "2026-01-01T12:00:00.500000+00:00"
    assert gauge("streams_agent_caught_up", "agents.prog-a", "prog-a") == 1
    assert gauge("streams_agent_caught_up", "agents.prog-b", "prog-b") == 0
    assert gauge("streams_agent_lag", "agents.prog-b", "prog-b") == 3


def test_before_the_first_reading_no_agent_is_caught_up() -> None:
    (entry,) = AgentProgress(app_with("prog-c")).report()
    assert entry["caught_up"] is False
    assert entry["updated_at"] is None and entry["partitions"] == []
