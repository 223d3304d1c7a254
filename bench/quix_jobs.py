"""The Quix Streams side of the peer benchmarks, run as its own process.

    python -m bench.quix_jobs p1|p7 BOOTSTRAP TOPIC GROUP STATE_DIR [SINK_TOPIC]

p1: per-key count and sum of `amount` in Quix's RocksDB state with its changelog
(`sdf.update(..., stateful=True)`, defaults). p7: a stateless map published to a sink
topic (`sdf.apply` then `sdf.to_topic`, defaults). Progress marks: bench.marks.
"""

from __future__ import annotations

import sys
from typing import Any

from quixstreams import Application, State

from bench.marks import Progress


def main(job: str, bootstrap: str, topic: str, group: str, state_dir: str,
         sink: str | None = None) -> None:
    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", state_dir=state_dir)
    source = app.topic(topic, value_deserializer="json")
    sdf = app.dataframe(source)
    progress = Progress()

    def add(value: dict[str, Any], state: State) -> None:
        totals = state.get("totals", {"count": 0, "sum": 0})
        totals["count"] += 1
        totals["sum"] += value["amount"]
        state.set("totals", totals)
        if progress.handled(1):
            app.stop()

    def project(value: dict[str, Any]) -> dict[str, Any]:
        if progress.handled(1):
            app.stop()
        return {"order_id": value["order_id"], "amount": value["amount"]}

    if job == "p1":
        sdf = sdf.update(add, stateful=True)
    else:
        sdf = sdf.apply(project)
        sdf.to_topic(app.topic(sink or f"{topic}-quix-out", value_serializer="json"))
    app.run()
    progress.write()  # after the final checkpoint: state, changelog and offsets flushed


if __name__ == "__main__":
    main(*sys.argv[1:])
