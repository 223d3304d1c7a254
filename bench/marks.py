"""When a job handled its first and its last expected record, written by the job itself.

Each consumer in the peer benchmarks (ours, Quix Streams) runs in its own process and
calls `Progress.handled(n)` from its processing function; once `BENCH_EXPECT` records were
handled it calls `write()`, which puts `{"first": t0, "last": t1}` (wall-clock seconds) in
`BENCH_MARK_FILE`. The rate is then records / (last - first): start-up and group join are
left out for every peer alike. Quix Streams defers its state and changelog writes to its
checkpoint (every 5 s by default), so its `last` is taken after `app.run()` returned from
the final checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Progress:
    def __init__(self) -> None:
        self.expect = int(os.environ.get("BENCH_EXPECT", "0"))
        self.path = Path(os.environ["BENCH_MARK_FILE"]) if os.environ.get(
            "BENCH_MARK_FILE") else None
        self.seen = 0
        self.first = 0.0

    def handled(self, count: int) -> bool:
        """Count `count` more handled records; True when the expected number is reached."""
        if not self.seen:
            self.first = time.time()
        before = self.seen
        self.seen += count
        return before < self.expect <= self.seen

    def write(self) -> None:
        """Record now as the time the last expected record was done."""
        if self.path is None:
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"first": self.first, "last": time.time(),
                                         "records": self.seen}))
        temporary.rename(self.path)


def read_mark(path: Path) -> dict[str, float] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None
