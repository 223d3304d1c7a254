"""Expect / ask the broker / seek back: records of a source partition in offset order.

Each partition has an expected next offset. A record at that offset passes. A record below
it was delivered again and is dropped. A record above it is a jump, and the broker is asked
which record really comes next (`BrokerReader.first_offset`, reading as the worker's
consumer reads):

- none in between (transaction markers, compacted or aborted records): the record passes,
  and `on_empty` is told the range held no record;
- records in between: the partition is seeked back to the first of them, and what comes
  after the hole is dropped until that record is delivered again.

The fetch loop checks every record this way (`streams.processing.fetch_order`), and so
does each exactly-once batch part (`streams.processing.source_positions`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from faust.types import TP

from streams.observability.metrics import SOURCE_RECORDS_DROPPED, SOURCE_REFETCHES

log = logging.getLogger(__name__)


class AtOffset(Protocol):
    """A fetched record: its offset is all the order check reads."""

    @property
    def offset(self) -> int: ...


R = TypeVar("R", bound=AtOffset)


class NextRecord(Protocol):
    """Where the next record of a partition at or after an offset really is."""

    async def first_offset(self, tp: TP, start: int) -> int: ...


class OffsetOrder:
    """The next offset each source partition must deliver (see module).

    `seek` moves the worker's consumer; `known_empty(tp, begin, end)` may say that a range
    is already known to hold no record (no need to ask); `on_empty` hears of ranges the
    broker said hold none. `reader` names the reader in the log line of a seek back.
    """

    def __init__(
        self,
        broker: NextRecord,
        seek: Callable[[TP, int], Awaitable[None]],
        *,
        known_empty: Callable[[TP, int, int], bool] | None = None,
        on_empty: Callable[[TP, int, int], None] | None = None,
        reader: str = "the fetcher",
    ) -> None:
        self._broker = broker
        self._seek = seek
        self._known_empty = known_empty
        self._on_empty = on_empty
        self._reader = reader
        self._next: dict[TP, int] = {}
        self._awaiting: dict[TP, int] = {}

    def expect(self, tp: TP, offset: int) -> None:
        """The record at `offset` comes next (the consumer was seeked there)."""
        self._next[tp] = offset
        self._awaiting.pop(tp, None)

    def expected(self, tp: TP) -> int | None:
        """The offset of `tp` to deliver next (None: nothing seeked yet)."""
        return self._awaiting.get(tp, self._next.get(tp))

    def forget(self, tps: Iterable[TP]) -> None:
        """Nothing is expected of `tps` any more (revoked)."""
        for tp in tps:
            self._next.pop(tp, None)
            self._awaiting.pop(tp, None)

    async def admit(self, tp: TP, offset: int) -> bool:
        """Whether the record at `offset` of `tp` is the next to deliver.

        Without an expected offset (nothing seeked yet) every record passes.
        """
        awaiting = self._awaiting.get(tp)
        if awaiting is not None:
            if offset != awaiting:
                SOURCE_RECORDS_DROPPED.labels("after_missing").inc()
                return False
            del self._awaiting[tp]
        expected = self._next.get(tp)
        if expected is not None and offset != expected:
            if offset < expected:
                SOURCE_RECORDS_DROPPED.labels("committed_already").inc()
                return False
            if self._known_empty is None or not self._known_empty(tp, expected, offset):
                following = await self._broker.first_offset(tp, expected)
                if self._next.get(tp) != expected or tp in self._awaiting:
                    return False  # seeked or revoked meanwhile: the record comes again
                if following < offset:
                    await self._refetch(tp, following, offset)
                    return False
                if self._on_empty is not None:
                    self._on_empty(tp, expected, offset)
        self._next[tp] = offset + 1
        return True

    async def admit_all(self, tp: TP, records: Sequence[R]) -> list[R]:
        """Those of `records` (of `tp`, in offset order) that `admit` lets through.

        The common case, each record at the expected offset, is checked inline; only a
        record that is not goes through `admit` (and may ask the broker).
        """
        passed = []
        following = self._next
        for record in records:
            offset = record.offset
            expected = following.get(tp)
            if (expected is None or offset == expected) and tp not in self._awaiting:
                following[tp] = offset + 1
                passed.append(record)
            elif await self.admit(tp, offset):
                passed.append(record)
        return passed

    async def _refetch(self, tp: TP, missing: int, seen: int) -> None:
        log.warning("%s[%d]: %s delivered offset %d, but the next record is at %d; "
                    "fetching again from there", tp.topic, tp.partition, self._reader, seen,
                    missing)
        SOURCE_REFETCHES.inc()
        SOURCE_RECORDS_DROPPED.labels("after_missing").inc()
        await self._seek(tp, missing)
        self._next[tp] = missing
        self._awaiting[tp] = missing
