"""Exactly-once: table recovery ends when only transaction markers are left to read.

Faust's recovery is done when the last offset read of each changelog partition reaches its
highwater (the end offset - 1). Under exactly-once every changelog ends with a transaction
marker, which the consumer never delivers, so the last record read stays one short. Faust
then waits for its changelog queue to stay empty for two 5-second timeouts before it
checks the consumer's position past the markers (`Recovery._slurp_changelogs`,
`detect_aborted_tx`): every rebalance with tables took 10 s longer than at-least-once.

`MarkerTailWatch` makes the same check five times a second: when the changelog queue has
been empty and no active partition's offset has moved for one interval, and the consumer's
position is past each lagging partition's highwater (so the offsets in between hold only
markers or aborted records) while the fetch loop holds no record and has none to fetch
again, it sets their offsets to the highwaters and ends recovery as
Faust would.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.sensors import Sensor
from faust.types import TP
from mode import Service

from streams._faust.recovery import end_recovery

log = logging.getLogger(__name__)

INTERVAL_S = 0.2


class MarkerTailWatch(Sensor):
    """Ends a recovery whose changelogs have nothing but markers left (see module)."""

    def __init__(self, app: Any, *, interval: float = INTERVAL_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.interval = interval
        self._last_seen: dict[TP, int] | None = None

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # never stop the worker over this: Faust ends recovery too
                log.debug("checking for a recovery with only markers left failed",
                          exc_info=True)

    async def check(self) -> None:
        recovery = self.app.tables.recovery
        lagging = _lagging(recovery)
        if not recovery.in_recovery or not lagging or not self.app.tables.changelog_queue.empty():
            self._last_seen = None
            return
        if not self._settled(lagging):
            self._last_seen = None
            return
        seen, self._last_seen = self._last_seen, lagging
        if seen != lagging:  # wait one interval without progress
            return
        for tp in lagging:
            position = await self.app.consumer.position(tp)
            if position is None or position <= recovery.active_highwaters[tp]:
                return
        if _lagging(recovery) != lagging or not self.app.tables.changelog_queue.empty() \
                or not self._settled(lagging):
            return
        for tp in lagging:
            recovery.active_offsets[tp] = recovery.active_highwaters[tp]
        self._last_seen = None
        if recovery.in_recovery and not recovery.need_recovery():
            log.info("table recovery: only transaction markers left in %s; recovery done",
                     ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(lagging)))
            end_recovery(recovery)


    def _settled(self, lagging: dict[TP, int]) -> bool:
        """Whether the consumer's positions tell what the recovery will get: records
        fetched but still in the fetch loop's hands, or dropped to be fetched again
        (streams.processing.consumer), are past the position without being markers."""
        settled = getattr(self.app.consumer, "changelogs_settled", None)
        return settled is None or bool(settled(set(lagging)))


def _lagging(recovery: Any) -> dict[TP, int]:
    """Active changelog partitions whose last offset read is short of the highwater."""
    offsets = recovery.active_offsets
    return {tp: offsets[tp] for tp, highwater in recovery.active_highwaters.items()
            if highwater is not None and highwater >= 0 and offsets.get(tp) is not None
            and offsets[tp] < highwater}
