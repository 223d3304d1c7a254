"""Baseline: the same counting as a plain Faust per-event agent with a RocksDB table.

Run as `python bench/plain_faust_app.py worker` with BENCH_TOPIC, APP_ID, DATA_DIR,
WEB_PORT and KAFKA_BOOTSTRAP_SERVERS set.
"""

from __future__ import annotations

import json
import os

import faust

TOPIC = os.environ["BENCH_TOPIC"]

app = faust.App(
    os.environ["APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="rocksdb://",
    datadir=os.environ["DATA_DIR"],
    web_port=int(os.environ["WEB_PORT"]),
    topic_partitions=3,
    consumer_auto_offset_reset="earliest",
)
source = app.topic(TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw",
                   value_serializer="raw")
counts = app.Table(f"{TOPIC}-counts", default=int, key_type=str, value_type=int,
                   options={"driver": "rocksdict"})


@app.agent(source)
async def count_events(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        data = json.loads(event.value)
        key = event.key.decode()
        assert data["user"] == key
        counts[key] += 1


if __name__ == "__main__":
    app.main()
