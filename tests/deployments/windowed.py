"""A test deployment: events keyed by a name, counted per minute (tumbling), per minute
every 20 s (hopping) and in total, with window expiry set by `TEST_EXPIRES_S`."""

from __future__ import annotations

import os

import faust

from streams import Hopping, Message, PerKeyTable, Tumbling, WindowedTable, batch_agent

TOPIC = os.environ["TEST_TOPIC"]
EXPIRES_S = float(os.environ.get("TEST_EXPIRES_S", "3600"))


class Event(faust.Record, serializer="json"):
    id: int


per_minute: WindowedTable[int] = WindowedTable(
    "events_per_minute", value_type=int, default=int, window=Tumbling(60), expires=EXPIRES_S)
hopping: WindowedTable[int] = WindowedTable(
    "events_hopping", value_type=int, default=int, window=Hopping(60, 20), expires=EXPIRES_S)
totals: PerKeyTable[int] = PerKeyTable("events_total", value_type=int, default=int)
# Declared for its int keys (lookups of malformed keys); nothing writes it.
by_number: PerKeyTable[int] = PerKeyTable("by_number", value_type=int, default=int,
                                          key_type=int)


@batch_agent(TOPIC, value_type=Event)
async def count_events(batch: list[Message[Event]]) -> None:
    with per_minute.batch() as minutes, hopping.batch() as hops, totals.batch() as total:
        for message in batch:
            minutes.update(message, message.key, lambda n: n + 1)
            hops.update(message, message.key, lambda n: n + 1)
            total.update(message, message.key, lambda n: n + 1)
