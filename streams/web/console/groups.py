"""Consumer groups screen: state, members and their partitions, committed offsets and lag,
and resetting the offsets of a group nobody consumes with.

    GET  /api/groups                   every group: state, protocol, member count
    GET  /api/groups/{group}           members with partitions (and a Faust worker's URL),
                                       committed offset, end offset and lag per partition
    POST /api/groups/{group}/reset     {"to": "earliest"|"latest"|"timestamp",
                                        "timestamp": ms or ISO, "topic": optional}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from yarl import URL

from streams.web.console._http import ApiError, Console, api, console_of, json_body
from streams.web.console.messages import parse_timestamp
from streams.web.console.topics import partition_metadata

RESET_TARGETS = ("earliest", "latest", "timestamp")
IDLE_STATES = ("Empty", "Dead")


def web_url(value: Any) -> str | None:
    """`value` if it is an http(s) URL, else None.

    Any group member writes its own metadata: a `javascript:` or `data:` "URL" from it
    must never become a link on the dashboard.
    """
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        url = URL(value)
    except ValueError:
        return None
    return value if url.scheme in ("http", "https") and url.raw_host else None


def _member(raw: Any) -> dict[str, Any]:
    member_id, client_id, client_host, metadata, assignment = raw[:5]
    url = None
    with contextlib.suppress(Exception):  # a non-Faust client's user data is opaque
        user_data = ConsumerProtocolMemberMetadata.decode(metadata).user_data
        url = web_url(json.loads(user_data).get("url")) if user_data else None
    partitions: list[dict[str, Any]] = []
    with contextlib.suppress(Exception):  # empty while the group rebalances
        decoded = ConsumerProtocolMemberAssignment.decode(assignment)
        partitions = [{"topic": topic, "partition": p}
                      for topic, ps in decoded.assignment for p in sorted(ps)]
    return {"member_id": member_id, "client_id": client_id, "host": client_host.lstrip("/"),
            "url": url, "partitions": sorted(partitions,
                                             key=lambda x: (x["topic"], x["partition"]))}


async def describe_group(console: Console, group: str) -> dict[str, Any]:
    admin = await console.admin()
    [response] = await admin.describe_consumer_groups([group])
    error_code, group_id, state, protocol_type, protocol, members = response.groups[0][:6]
    return {"group": group_id, "state": state, "protocol_type": protocol_type,
            "protocol": protocol, "error_code": error_code,
            "members": [_member(m) for m in members]}


async def group_offsets(console: Console, group: str) -> list[dict[str, Any]]:
    """Committed offset, end offset and lag of every partition the group committed."""
    committed = await (await console.admin()).list_consumer_group_offsets(group)
    committed = {tp: meta for tp, meta in committed.items() if meta.offset >= 0}
    if not committed:
        return []
    ends = await (await console.offsets()).end_offsets(list(committed))
    return [{"topic": tp.topic, "partition": tp.partition, "committed": meta.offset,
             "end_offset": ends[tp], "lag": max(0, ends[tp] - meta.offset)}
            for tp, meta in sorted(committed.items())]


async def _describe_each(admin: Any, group_ids: list[str]) -> dict[str, Any]:
    """One DescribeGroups request per group: aiokafka 0.14 fails to decode the answer for
    several groups at once ("Buffer underrun decoding string") and drops the connection."""
    limit = asyncio.Semaphore(8)

    async def one(group_id: str) -> Any:
        async with limit:
            [response] = await admin.describe_consumer_groups([group_id])
            return response.groups[0]

    entries = await asyncio.gather(*(one(g) for g in group_ids))
    return {entry[1]: entry for entry in entries}


@api
async def get_groups(request: web.Request) -> web.Response:
    console = console_of(request)
    admin = await console.admin()
    listed = sorted(await admin.list_consumer_groups())
    groups = []
    if listed:
        described = await _describe_each(admin, [g[0] for g in listed])
        for group_id, protocol_type in listed:
            entry = described.get(group_id)
            groups.append({
                "group": group_id, "protocol_type": protocol_type,
                "state": entry[2] if entry else "Unknown",
                "protocol": entry[4] if entry else "",
                "members": len(entry[5]) if entry else 0,
                "this_app": group_id == console.group_id,
            })
    return web.json_response({"groups": groups, "app_group": console.group_id})


@api
async def get_group(request: web.Request) -> web.Response:
    console = console_of(request)
    group = request.match_info["group"]
    described = await describe_group(console, group)
    offsets = await group_offsets(console, group)
    if described["state"] == "Dead" and not offsets:
        raise ApiError(404, f"consumer group {group!r} does not exist (no members, no "
                            "committed offsets)")
    owners = {(p["topic"], p["partition"]): m["member_id"]
              for m in described["members"] for p in m["partitions"]}
    for row in offsets:
        row["member_id"] = owners.get((row["topic"], row["partition"]))
    lag_by_topic: dict[str, int] = defaultdict(int)
    for row in offsets:
        lag_by_topic[row["topic"]] += row["lag"]
    distribution = [{"member_id": m["member_id"], "url": m["url"], "host": m["host"],
                     "partitions": len(m["partitions"]),
                     "by_topic": _count_by_topic(m["partitions"])}
                    for m in described["members"]]
    return web.json_response({
        **described, "offsets": offsets, "lag": sum(lag_by_topic.values()),
        "lag_by_topic": dict(sorted(lag_by_topic.items())), "distribution": distribution,
        "this_app": group == console.group_id,
    })


def _count_by_topic(partitions: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for p in partitions:
        counts[p["topic"]] += 1
    return dict(sorted(counts.items()))


async def _reset_targets(console: Console, group: str, body: dict[str, Any],
                         ) -> dict[TopicPartition, int]:
    to = body.get("to")
    if to not in RESET_TARGETS:
        raise ApiError(400, f'"to" must be one of {", ".join(RESET_TARGETS)}, got {to!r}')
    topic = body.get("topic")
    if topic is not None:
        metadata = await partition_metadata(console, str(topic))
        tps = [TopicPartition(str(topic), p["partition"]) for p in metadata]
    else:
        committed = await group_offsets(console, group)
        tps = [TopicPartition(row["topic"], row["partition"]) for row in committed]
        if not tps:
            raise ApiError(400, f"group {group!r} has no committed offsets; name the "
                                '"topic" whose offsets to set')
    offsets = await console.offsets()
    if to == "earliest":
        return dict(await offsets.beginning_offsets(tps))
    ends = await offsets.end_offsets(tps)
    if to == "latest":
        return dict(ends)
    raw = body.get("timestamp")
    if raw is None:
        raise ApiError(400, '"to": "timestamp" needs "timestamp" (epoch ms or ISO 8601)')
    when = parse_timestamp(str(raw))
    found = await offsets.offsets_for_times({tp: when for tp in tps})
    return {tp: (hit.offset if hit is not None else ends[tp]) for tp, hit in found.items()}


@api
async def reset_group(request: web.Request) -> web.Response:
    console = console_of(request)
    group = request.match_info["group"]
    body = await json_body(request)
    described = await describe_group(console, group)
    if described["state"] not in IDLE_STATES or described["members"]:
        raise ApiError(409, f"group {group!r} is {described['state']} with "
                            f"{len(described['members'])} member(s); offsets can only be "
                            "reset while no consumer of the group runs")
    targets = await _reset_targets(console, group, body)
    # A consumer with the group id that assigns partitions itself commits without joining
    # the group (generation -1), which the coordinator accepts only for an empty group.
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False,
                                **console.client_options())
    await consumer.start()
    try:
        consumer.assign(list(targets))
        await consumer.commit(dict(targets))
    finally:
        await consumer.stop()
    return web.json_response({"group": group, "to": body["to"], "offsets": [
        {"topic": tp.topic, "partition": tp.partition, "offset": offset}
        for tp, offset in sorted(targets.items())]})


def add_routes(router: web.UrlDispatcher, *, writes: bool) -> None:
    router.add_get("/api/groups", get_groups)
    router.add_get("/api/groups/{group}", get_group)
    if writes:
        router.add_post("/api/groups/{group}/reset", reset_group)
