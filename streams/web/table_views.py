"""What the table routes (`streams.web.table_routes`) answer: a table's description, a
page of its keys in order, a key's value or windows.

A page is read with `scan_page`: a seek per local partition and a merge, so it costs about
its size whatever the table holds; a windowed table's entries carry their window, and the
cursor names key and window.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec

from streams._faust.store import partition_dbs
from streams.state.scan import active_partitions, decode_key, decode_value, scan
from streams.state.tables import PerKeyTable
from streams.state.windows import (
    WindowedTable,
    decode_window_key,
    encode_window_key,
    iso,
    ordered_float,
)

AnyTable = PerKeyTable[Any] | WindowedTable[Any]

#: Keys counted per partition for `/api/tables` (counting a million keys takes ~0.3 s,
#: and the event loop waits for it).
COUNT_CAP = 100_000


def to_json(value: Any) -> Any:
    """A table value as JSON-ready data (Faust Records know their own representation)."""
    if isinstance(value, faust.Record):
        return value.asdict()
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    return value


def describe(table: AnyTable) -> dict[str, Any]:
    """What `/api/tables` says of one table."""
    faust_table = table.faust_table
    local_keys = local_key_counts(table)
    return {
        "name": table.name,
        "key_type": getattr(table.key_type, "__name__", str(table.key_type)),
        "value_type": getattr(table.value_type, "__name__", str(table.value_type)),
        "partitions": faust_table.partitions or faust_table.app.conf.topic_partitions,
        "key_partitioner": table.key_partitioner,
        "local_keys": local_keys,
        "local_keys_capped": any(n >= COUNT_CAP for n in local_keys.values()),
        "windowed": isinstance(table, WindowedTable),
        "window": ({**table.window.describe(), "expires_s": table.expires_s}
                   if isinstance(table, WindowedTable) else None),
    }


def local_key_counts(table: AnyTable) -> dict[str, int]:
    """Stored keys (for a windowed table: key-window pairs) per active local partition,
    counted up to `COUNT_CAP`."""
    faust_table = table.faust_table
    if partition_dbs(faust_table.data) is None:  # in-memory store: no partitions
        counts: dict[str, int] = {}
        for key in faust_table.data.data:
            plain = key[0] if isinstance(table, WindowedTable) else key
            partition = str(table.partition_of(plain))
            counts[partition] = counts.get(partition, 0) + 1
        return dict(sorted(counts.items()))
    return {str(p): sum(1 for _ in itertools.islice(scan(faust_table, partitions=[p]),
                                                    COUNT_CAP))
            for p in active_partitions(faust_table)}


# --- ordered scans (the dashboard's browse) ---------------------------------------------

def scan_page(table: AnyTable, prefix: str, after: str | None, limit: int,
              ) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` entries of the local active partitions, in key order, whose key starts
    with `prefix` and comes after the cursor `after`; also how many records were read.

    An entry is `{"key", "value"}`, for a windowed table also `"window": {"start", "end",
    "start_epoch", "end_epoch"}` (ISO 8601 and epoch seconds, end exclusive). Pass
    `cursor_of(last entry)` as the next `after`.
    """
    faust_table = table.faust_table
    start = prefix.encode()
    if after is not None:
        start = max(start, _seek_after(table, after))
    entries: list[dict[str, Any]] = []
    read = 0
    for raw_key, raw_value in scan(faust_table, start):
        read += 1
        if not raw_key.startswith(prefix.encode()) or len(entries) >= limit:
            break
        if isinstance(table, WindowedTable):
            key, (window_start, _) = decode_window_key(raw_key)
            if not key.startswith(prefix):  # the prefix reached into the window suffix
                continue
            window_end = window_start + table.size_s
            entries.append({"key": key, "window": {"start": iso(window_start),
                                                   "end": iso(window_end),
                                                   "start_epoch": window_start,
                                                   "end_epoch": window_end},
                            "value": to_json(decode_value(faust_table, raw_value))})
        else:
            entries.append({"key": decode_key(faust_table, raw_key),
                            "value": to_json(decode_value(faust_table, raw_value))})
    return entries, read


def cursor_of(entry: dict[str, Any]) -> str:
    """The `after` that continues a scan past `entry` (`key@window start` when windowed)."""
    window = entry.get("window")
    return (str(entry["key"]) if window is None
            else f"{entry['key']}@{window['start_epoch']!r}")


def _seek_after(table: AnyTable, after: str) -> bytes:
    """The smallest stored key that can follow the cursor."""
    if not isinstance(table, WindowedTable):
        return after.encode() + b"\0"
    key, _, start = after.rpartition("@")
    try:
        window_start = float(start) if key else math.nan
    except ValueError:
        window_start = math.nan
    if math.isnan(window_start):  # a bare key: after all its windows
        return encode_window_key(after) + b"\1"
    return encode_window_key(key) + b"\0" + ordered_float(window_start) + b"\xff" * 8


def window_lookup(table: WindowedTable[Any], key: str, query: dict[str, str]) -> dict[str, Any]:
    """The answer to a windowed key lookup; ValueError for bad parameters (400),
    LookupError when the current window has no value (404)."""
    unknown = sorted(set(query) - {"window", "from", "to"})
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}: use window=current "
                         "or from=...&to=...")
    if "window" in query:
        if query["window"] != "current":
            raise ValueError(f"window={query['window']!r}: the only window by name is current")
        if "from" in query or "to" in query:
            raise ValueError("give either window=current or from/to, not both")
        found = table.current(key)
        if found is None:
            raise LookupError(f"key {key!r} has no value in the current window of table "
                              f"{table.name!r}")
        return {"table": table.name, "key": key, **found.as_dict(to_json)}
    start = parse_time("from", query["from"]) if "from" in query else -math.inf
    end = parse_time("to", query["to"]) if "to" in query else math.inf
    windows = table.range(key, start, end)
    return {"table": table.name, "key": key,
            "from": iso(start) if math.isfinite(start) else None,
            "to": iso(end) if math.isfinite(end) else None,
            "windows": [w.as_dict(to_json) for w in windows]}


def parse_time(name: str, raw: str) -> float:
    """Epoch seconds from ISO-8601 (UTC when no offset is given) or a number of seconds."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is neither ISO-8601 (2026-01-31T12:00:00Z) "
                             "nor epoch seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    try:
        datetime.fromtimestamp(value, tz=UTC)  # also refuses nan, inf and year 10000
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{name}={raw!r} is out of range for a date") from None
    return value


def parse_key(table: PerKeyTable[Any], raw: str) -> Any:
    """The key of a lookup as the table keys it (ValueError for a bad integer key)."""
    if table.key_type is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"key {raw!r} is not an integer, as table "
                             f"{table.name!r} expects") from None
    return raw
