"""How often Python's cyclic garbage collector runs in a worker and the producer service.

A worker allocates several container objects per record (the fetched record, Faust's
message and event, the platform `Message`, the decoded value), and holds tens of thousands
of them at a time in its agents' buffers. With Python's default thresholds (700, 10, 10)
the youngest generation is collected every 700 allocations, the records still buffered
survive into the older generations, and full collections keep scanning them: that cost a
worker a third of its time at 25,000 records/s (measured with the P1 and P7 benchmarks in
docs/guide/performance.md). Almost none of these objects are in reference cycles: they are
freed by reference counting as soon as their batch is done, so collecting less often
frees the same memory, later by a few milliseconds. The producer service holds each
request's records until they are acknowledged, and is tuned the same way.
"""

from __future__ import annotations

import gc

#: Collections of the middle and oldest generations, per collection of the one below.
OLDER_GENERATION_THRESHOLDS = (20, 10)


def set_collection_thresholds(young: int) -> None:
    """Collect the youngest generation every `young` allocations (0: Python's defaults)."""
    if young:
        gc.set_threshold(young, *OLDER_GENERATION_THRESHOLDS)


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, the app, its services) out of the collector's
    reach, so that full collections scan only what was allocated since: they stay short
    and do not stall the event loop for the whole heap."""
    gc.collect()
    gc.freeze()
