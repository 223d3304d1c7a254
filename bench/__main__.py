"""`make bench`: every benchmark, each comparing against a baseline measured in the same run."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.kafka_local import kafka_for_session

BENCHMARKS = ["bench.foundation", "bench.bench_producer", "bench.bench_consumer",
              "bench.bench_tables", "bench.bench_exactly_once", "bench.bench_peers"]


def main(names: list[str]) -> int:
    """Run the benchmarks on one broker (`KAFKA_BOOTSTRAP_SERVERS`, else a local one).

    The foundation benchmark starts brokers of its own: their start-up is what it times.
    """
    results: dict[str, Any] = {}
    took: dict[str, float] = {}
    began = time.monotonic()
    with kafka_for_session() as bootstrap_servers:
        for name in names or BENCHMARKS:
            module = importlib.import_module(name)
            started = time.monotonic()
            results[name] = module.run(bootstrap_servers)
            took[name] = time.monotonic() - started
            print(f"({name}: {took[name] / 60:.1f} min)", flush=True)
    took["total"] = time.monotonic() - began
    results["elapsed_s"] = took
    out = Path("test-output") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfigures written to {out} ({took['total'] / 60:.1f} min in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
