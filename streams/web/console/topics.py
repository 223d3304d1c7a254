"""Cluster and topics screens: brokers, topics with their partitions and offsets, creating
topics and adding partitions.

    GET  /api/cluster                       brokers, controller, topic and partition counts
    GET  /api/topics                        every topic: partitions, replication, messages
    POST /api/topics                        {"name", "partitions", "replication", "config"}
    GET  /api/topics/{topic}                partitions: leader, replicas, ISR, start/end
    POST /api/topics/{topic}/partitions     {"count": new total}
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.admin import NewPartitions, NewTopic
from aiokafka.errors import KafkaError, for_code

from streams.web.console._http import (
    ApiError,
    Console,
    api,
    checked_topic_name,
    console_of,
    json_body,
)

MAX_PARTITIONS = 1000
_CONFIG_NAME = re.compile(r"[a-z0-9.\-_]+")


async def topic_names(console: Console, *, internal: bool = False) -> list[str]:
    names = await (await console.admin()).list_topics()
    return sorted(n for n in names if internal or not n.startswith("__"))


async def partition_metadata(console: Console, topic: str) -> list[dict[str, Any]]:
    """The topic's partitions (leader, replicas, ISR) in partition order; 404 if unknown."""
    checked_topic_name(topic)
    if topic not in await topic_names(console, internal=True):
        raise ApiError(404, f"topic {topic!r} does not exist")
    described = await (await console.admin()).describe_topics([topic])
    partitions = described[0]["partitions"] if described else []
    return sorted(partitions, key=lambda p: p["partition"])


async def offset_bounds(console: Console, topic: str, partitions: list[int],
                        ) -> dict[int, tuple[int, int]]:
    """(start, end) offsets per partition: the first kept record and the next to be written."""
    consumer = await console.offsets()
    tps = [TopicPartition(topic, p) for p in partitions]
    starts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    return {tp.partition: (starts[tp], ends[tp]) for tp in tps}


async def describe_topic(console: Console, topic: str) -> dict[str, Any]:
    metadata = await partition_metadata(console, topic)
    bounds = await offset_bounds(console, topic, [p["partition"] for p in metadata])
    partitions = [{
        "partition": p["partition"],
        "leader": p["leader"],
        "replicas": p["replicas"],
        "isr": p["isr"],
        "offline_replicas": p.get("offline_replicas", []),
        "start_offset": bounds[p["partition"]][0],
        "end_offset": bounds[p["partition"]][1],
        "messages": bounds[p["partition"]][1] - bounds[p["partition"]][0],
    } for p in metadata]
    return {
        "name": topic,
        "partitions": partitions,
        "partition_count": len(partitions),
        "replication": max((len(p["replicas"]) for p in partitions), default=0),
        "messages": sum(p["messages"] for p in partitions),
        "under_replicated": sum(1 for p in partitions if len(p["isr"]) < len(p["replicas"])),
    }


async def list_topics(console: Console, *, internal: bool) -> list[dict[str, Any]]:
    names = await topic_names(console, internal=internal)
    if not names:
        return []
    described = await (await console.admin()).describe_topics(names)
    tps = [TopicPartition(t["topic"], p["partition"]) for t in described
           for p in t["partitions"]]
    consumer = await console.offsets()
    starts = await consumer.beginning_offsets(tps) if tps else {}
    ends = await consumer.end_offsets(tps) if tps else {}
    topics = []
    for entry in sorted(described, key=lambda t: t["topic"]):
        parts = entry["partitions"]
        name = entry["topic"]
        topics.append({
            "name": name,
            "partitions": len(parts),
            "replication": max((len(p["replicas"]) for p in parts), default=0),
            "messages": sum(ends[TopicPartition(name, p["partition"])]
                            - starts[TopicPartition(name, p["partition"])] for p in parts),
            "end_offset_total": sum(ends[TopicPartition(name, p["partition"])] for p in parts),
            "under_replicated": sum(1 for p in parts if len(p["isr"]) < len(p["replicas"])),
            "internal": name.startswith("__"),
            "dead_letters": name.endswith(".dlq"),
        })
    return topics


@api
async def get_cluster(request: web.Request) -> web.Response:
    console = console_of(request)
    admin = await console.admin()
    cluster = await admin.describe_cluster()
    described = await admin.describe_topics()
    return web.json_response({
        "cluster_id": cluster.get("cluster_id"),
        "controller_id": cluster.get("controller_id"),
        "brokers": sorted(({"node_id": b["node_id"], "host": b["host"], "port": b["port"],
                            "rack": b.get("rack")} for b in cluster["brokers"]),
                          key=lambda b: b["node_id"]),
        "topics": sum(1 for t in described if not t["topic"].startswith("__")),
        "partitions": sum(len(t["partitions"]) for t in described
                          if not t["topic"].startswith("__")),
        "internal_topics": sum(1 for t in described if t["topic"].startswith("__")),
        "consumer_group": console.group_id,
    })


@api
async def get_topics(request: web.Request) -> web.Response:
    internal = request.query.get("internal", "false").lower() in ("1", "true", "yes")
    return web.json_response({"topics": await list_topics(console_of(request),
                                                          internal=internal)})


@api
async def get_topic(request: web.Request) -> web.Response:
    return web.json_response(await describe_topic(console_of(request),
                                                  request.match_info["topic"]))


def _positive_int(body: dict[str, Any], name: str, default: int | None, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        raise ApiError(400, f'"{name}" is required')
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise ApiError(400, f'"{name}" must be an integer from 1 to {high}, got {value!r}')
    return value


def _topic_config(body: dict[str, Any]) -> dict[str, str]:
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise ApiError(400, '"config" must be an object of topic settings, e.g. '
                            '{"retention.ms": "86400000"}')
    checked = {}
    for key, value in config.items():
        if not _CONFIG_NAME.fullmatch(str(key)):
            raise ApiError(400, f"config name {key!r} is not a topic setting name")
        if not isinstance(value, str | int | bool):
            raise ApiError(400, f"config {key!r} must be a string or number")
        checked[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return checked


def _raise_for_topic_errors(response: Any, what: str) -> None:
    for entry in getattr(response, "topic_errors", []):
        code, message = entry[1], entry[2] if len(entry) > 2 else None
        if code:
            error = for_code(code)
            status = 409 if error.__name__ == "TopicAlreadyExistsError" else 400
            raise ApiError(status, f"{what}: {error.__name__}: {message or error.description}")


@api
async def create_topic(request: web.Request) -> web.Response:
    console = console_of(request)
    body = await json_body(request)
    name = checked_topic_name(str(body.get("name") or ""))
    brokers = len((await (await console.admin()).describe_cluster())["brokers"])
    partitions = _positive_int(body, "partitions", console.settings.topic_partitions,
                               MAX_PARTITIONS)
    replication = _positive_int(body, "replication", min(console.settings.topic_replication,
                                                         brokers), 32)
    if replication > brokers:
        raise ApiError(400, f"replication {replication} is more than the {brokers} "
                            "broker(s) of the cluster")
    config = _topic_config(body)
    if name in await topic_names(console, internal=True):
        raise ApiError(409, f"topic {name!r} already exists")
    response = await (await console.admin()).create_topics(
        [NewTopic(name, partitions, replication, topic_configs=config)])
    _raise_for_topic_errors(response, f"creating topic {name!r}")
    return web.json_response({"name": name, "partitions": partitions,
                              "replication": replication, "config": config}, status=201)


@api
async def add_partitions(request: web.Request) -> web.Response:
    console = console_of(request)
    topic = request.match_info["topic"]
    current = len(await partition_metadata(console, topic))
    body = await json_body(request)
    count = _positive_int(body, "count", None, MAX_PARTITIONS)
    if count <= current:
        raise ApiError(400, f"topic {topic!r} has {current} partitions; the new count must "
                            f"be larger (Kafka cannot remove partitions), got {count}")
    try:
        await (await console.admin()).create_partitions({topic: NewPartitions(count)})
    except KafkaError as exc:
        if getattr(exc, "retriable", False):
            raise
        raise ApiError(400, f"adding partitions to {topic!r}: {exc}") from None
    return web.json_response({"name": topic, "partitions": count, "previous": current})


def add_routes(router: web.UrlDispatcher, *, writes: bool) -> None:
    router.add_get("/api/cluster", get_cluster)
    router.add_get("/api/topics", get_topics)
    router.add_get("/api/topics/{topic}", get_topic)
    if writes:
        router.add_post("/api/topics", create_topic)
        router.add_post("/api/topics/{topic}/partitions", add_partitions)
