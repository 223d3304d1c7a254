"""Exactly-once table recovery ends once only transaction markers are left to read."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.processing.marker_tail import MarkerTailWatch

CHANGELOG = TP("app-counts-changelog", 0)


class FakeRecovery:
    def __init__(self, offset: int, highwater: int) -> None:
        self.in_recovery = True
        self.active_offsets: Counter[TP] = Counter({CHANGELOG: offset})
        self.active_highwaters: Counter[TP] = Counter({CHANGELOG: highwater})
        self.signal_recovery_end = asyncio.Event()
        self.flushed = False

    def need_recovery(self) -> bool:
        return any(self.active_highwaters[tp] - self.active_offsets[tp] > 0
                   for tp in self.active_highwaters)

    def flush_buffers(self) -> None:
        self.flushed = True

    def _set_recovery_ended(self) -> None:
        self.in_recovery = False


def watch(recovery: FakeRecovery, position: int, queued: int = 0) -> tuple[MarkerTailWatch, Any]:
    async def position_of(tp: TP) -> int:
        return position

    queue = SimpleNamespace(empty=lambda: queued == 0)
    app = SimpleNamespace(tables=SimpleNamespace(recovery=recovery, changelog_queue=queue),
                          consumer=SimpleNamespace(position=position_of))
    return MarkerTailWatch(app), app


def checks(tail: MarkerTailWatch, times: int) -> None:
    async def run() -> None:
        for _ in range(times):
            await tail.check()
    asyncio.run(run())


def test_a_changelog_ending_in_a_marker_ends_recovery_after_one_quiet_interval() -> None:
    # last record at 41, commit marker at 42 (Faust's highwater), consumer position 43
    recovery = FakeRecovery(offset=41, highwater=42)
    tail, _ = watch(recovery, position=43)
    checks(tail, 1)
    assert recovery.in_recovery  # one look is not enough: records may still be on the way
    checks(tail, 1)
    assert not recovery.in_recovery
    assert recovery.active_offsets[CHANGELOG] == 42
    assert recovery.flushed and recovery.signal_recovery_end.is_set()


def test_records_not_read_yet_keep_recovery_going() -> None:
    recovery = FakeRecovery(offset=30, highwater=42)
    tail, _ = watch(recovery, position=35)  # the consumer has not fetched past 34
    checks(tail, 3)
    assert recovery.in_recovery and recovery.active_offsets[CHANGELOG] == 30


def test_records_waiting_in_the_changelog_queue_keep_recovery_going() -> None:
    recovery = FakeRecovery(offset=41, highwater=42)
    tail, _ = watch(recovery, position=43, queued=1)
    checks(tail, 3)
    assert recovery.in_recovery


def test_records_the_consumer_fetched_but_has_not_queued_keep_recovery_going() -> None:
    """The position is past records still in the fetch loop's hands, or dropped from the
    queue and about to be fetched again: they are not markers."""
    recovery = FakeRecovery(offset=-1, highwater=848)
    tail, app = watch(recovery, position=900)
    settled = False
    app.consumer.changelogs_settled = lambda tps: settled
    checks(tail, 3)
    assert recovery.in_recovery and recovery.active_offsets[CHANGELOG] == -1
    settled = True  # and still no record came: only markers were left
    checks(tail, 2)
    assert not recovery.in_recovery
