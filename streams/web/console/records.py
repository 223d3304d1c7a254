"""Reading records for people: bounded scans of partitions and records as JSON.

A scan reads at most `max_scan` records, stops at each partition's end offset as it was
when the scan began, and tells how far it got ("scanned N of M"), so a search over a big
topic answers quickly and says what it did not look at.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiokafka import ConsumerRecord, TopicPartition

from streams.web.console._http import Console
from streams.web.console.filters import Predicate

Order = Literal["oldest_first", "newest_first"]
FETCH_RECORDS = 500


def _text(data: bytes | None) -> tuple[str | None, str]:
    """(text, encoding): UTF-8 text when it is, else base64."""
    if data is None:
        return None, "null"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def decoded_headers(headers: Any) -> dict[str, str]:
    """Header values as text (base64 with a `base64:` prefix when not UTF-8)."""
    decoded = {}
    for name, raw in headers or ():
        text, encoding = _text(bytes(raw) if raw is not None else None)
        decoded[str(name)] = (f"base64:{text}" if encoding == "base64" else text) or ""
    return decoded


def record_view(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """A record as the API shows it; `value` is parsed JSON when the bytes are JSON."""
    key, key_encoding = _text(record.key)
    raw_value, value_encoding = _text(record.value)
    value: Any = raw_value
    is_json = False
    if value_encoding == "utf-8" and raw_value is not None:
        with contextlib.suppress(ValueError):
            value, is_json = json.loads(raw_value), True
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "time": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(),
        "key": key,
        "key_encoding": key_encoding,
        "value": value,
        "value_encoding": "json" if is_json else value_encoding,
        "headers": decoded_headers(record.headers),
        "size": len(record.key or b"") + len(record.value or b""),
    }


def filter_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping a search predicate sees."""
    return {name: view[name] for name in
            ("key", "value", "headers", "partition", "offset", "timestamp")}


@dataclass
class ScanResult:
    messages: list[dict[str, Any]]
    scanned: int
    total: int
    next_positions: dict[int, int]
    ends: dict[int, int]
    complete: bool
    timed_out: bool = False
    stats: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "count": len(self.messages),
            "scanned": self.scanned,
            "total": self.total,
            "progress": f"scanned {self.scanned} of {self.total}",
            "complete": self.complete,
            "timed_out": self.timed_out,
            "next_positions": {str(p): o for p, o in sorted(self.next_positions.items())},
            "end_offsets": {str(p): o for p, o in sorted(self.ends.items())},
        }


async def scan(console: Console, topic: str, ranges: Mapping[int, tuple[int, int]], *,
               limit: int, max_scan: int, match: Predicate | None = None,
               order: Order = "oldest_first", time_budget_s: float = 15.0) -> ScanResult:
    """Read `ranges` ({partition: (from offset, end offset)}) and keep matching records.

    `oldest_first` stops once `limit` records matched; `newest_first` reads the whole
    (bounded) range and keeps the newest `limit` matches.
    """
    total = sum(max(0, end - start) for start, end in ranges.values())
    positions = {p: start for p, (start, _) in ranges.items()}
    ends = {p: end for p, (_, end) in ranges.items()}
    pending = {p for p, (start, end) in ranges.items() if start < end}
    kept: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    scanned = 0
    timed_out = False
    if pending and max_scan > 0:
        async with console.consumer(max_poll_records=FETCH_RECORDS) as consumer:
            tps = {p: TopicPartition(topic, p) for p in pending}
            consumer.assign(list(tps.values()))
            for p, tp in tps.items():
                consumer.seek(tp, positions[p])
            deadline = time.monotonic() + time_budget_s
            while pending and scanned < max_scan:
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=min(FETCH_RECORDS, max_scan - scanned))
                for tp, records in batches.items():
                    for record in records:
                        if (record.offset >= ends[tp.partition] or scanned >= max_scan
                                or (order == "oldest_first" and len(kept) >= limit)):
                            break
                        scanned += 1
                        positions[tp.partition] = record.offset + 1
                        view = record_view(record)
                        if match is None or match(filter_view(view)):
                            _keep(kept, view, limit, order)
                if scanned >= max_scan or (order == "oldest_first" and len(kept) >= limit):
                    break  # positions say exactly how far the scan got: a page ends here
                for p in list(pending):
                    # past the last record: also skips transaction markers and compacted gaps
                    if max(positions[p], await consumer.position(tps[p])) >= ends[p]:
                        positions[p] = ends[p]
                        pending.discard(p)
                        consumer.pause(tps[p])
    pending = {p for p in pending if positions[p] < ends[p]}
    messages = [view for _, view in kept]
    if order == "oldest_first":
        messages.sort(key=lambda v: (v["timestamp"], v["partition"], v["offset"]))
        messages = messages[:limit]
    else:
        messages.sort(key=lambda v: (v["timestamp"], v["partition"], v["offset"]),
                      reverse=True)
    return ScanResult(messages, scanned, total, positions, ends, complete=not pending,
                      timed_out=timed_out)


def _keep(kept: list[tuple[tuple[int, int, int], dict[str, Any]]], view: dict[str, Any],
          limit: int, order: Order) -> None:
    rank = (view["timestamp"], view["partition"], view["offset"])
    if order == "oldest_first":
        kept.append((rank, view))
    elif len(kept) < limit:
        heapq.heappush(kept, (rank, view))
    else:
        heapq.heappushpop(kept, (rank, view))
