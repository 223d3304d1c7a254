"""Reads a source partition the way the worker's consumer does, outside the group's
fetching: where the group's committed offset is, and where the next record after an offset
really is (see streams.processing.fetch_order and streams.processing.source_positions)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.types import TP

from streams.errors import PositionUnknownError
from streams.observability.broker import app_client_options

PROBE_TIMEOUT_S = 30.0


class BrokerReader:
    """A client of the app's group reading as the app's consumer does, started on first
    use (it is rarely needed: once per partition per rebalance under exactly-once, and
    when records come out of order) and stopped by `close` (the app does, on stop)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def committed(self, tp: TP) -> int:
        """The group's committed offset of `tp` (0 if none: the topic is read from its
        start, see `auto.offset.reset`, so the first record decides)."""
        async with self._lock:
            consumer = await self._started()
            try:
                offset = await asyncio.wait_for(consumer.committed(tp), PROBE_TIMEOUT_S)
            except Exception as exc:
                raise PositionUnknownError(
                    f"{tp.topic}[{tp.partition}]: cannot read the committed offset of group "
                    f"{self.app.conf.id}: {type(exc).__name__}: {exc}") from exc
            return offset or 0

    async def first_offset(self, tp: TP, start: int) -> int:
        """The offset of the first record of `tp` at or after `start` (only committed ones
        under exactly-once, as the app's consumer reads them)."""
        async with self._lock:
            consumer = await self._started()
            consumer.assign([tp])
            consumer.seek(tp, start)
            deadline = time.monotonic() + PROBE_TIMEOUT_S
            while time.monotonic() < deadline:
                batches = await consumer.getmany(tp, timeout_ms=500, max_records=1)
                for records in batches.values():
                    if records:
                        return int(records[0].offset)
            raise PositionUnknownError(
                f"{tp.topic}[{tp.partition}]: no committed record at or after offset "
                f"{start} within {PROBE_TIMEOUT_S:.0f}s")

    async def close(self) -> None:
        """Stop the client if it was started; a later read starts a new one."""
        async with self._lock:
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                await consumer.stop()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            options = app_client_options(self.app, PROBE_TIMEOUT_S, purpose="positions")
            consumer = AIOKafkaConsumer(
                **options, group_id=self.app.conf.id, enable_auto_commit=False,
                isolation_level="read_committed" if self.app.in_transaction
                else "read_uncommitted")
            await consumer.start()
            self._consumer = consumer
        return self._consumer
