"""Faust's app with the two private steps the platform changes: the transport it creates
and the bounded wait for the batches in hand at shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
from faust.transport.consumer import Consumer
from faust.types import ConsumerT

from streams._faust.consumer import HookedTransport

log = logging.getLogger(__name__)


class FaustApp(faust.App):
    """A Faust app creating `transport_class` and bounding its shutdown wait.

    Subclasses set `transport_class` and override `shutdown_timeout_s`.
    """

    transport_class: type[HookedTransport] = HookedTransport

    @property
    def shutdown_timeout_s(self) -> float:
        """How long the batches in hand may take when partitions are given up."""
        return 30.0

    def _new_transport(self) -> HookedTransport:
        return self.transport_class(self.conf.broker_consumer, self)

    async def _consumer_wait_empty(self, consumer: ConsumerT, logger: Any) -> None:
        """Faust's shutdown step "wait until every fetched event is acked", bounded.

        Fetching is already paused here; Faust would wait for the batches in hand without
        a limit. After `shutdown_timeout_s` what was acked is committed and the rest is
        left for the next start.
        """
        timeout = self.shutdown_timeout_s
        unacked = cast(Consumer, consumer)._unacked_messages
        if unacked:
            log.info("stopping fetching: finishing the batches in hand (up to %.0fs) before "
                     "partitions are given up", timeout)
        waiting = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        done, _ = await asyncio.wait({waiting}, timeout=timeout)
        if not done:
            log.warning("batches in hand did not finish within %.0fs (SHUTDOWN_TIMEOUT_S); "
                        "they stay uncommitted and are processed again after restart",
                        timeout)
            # Cancelling Faust's wait loop does not end it (Consumer._wait_for_ack swallows
            # CancelledError), so asyncio.wait_for would hang until the batch ends. Emptying
            # the set of messages it waits for makes it commit what was acked and return.
            unacked.clear()
        await waiting
