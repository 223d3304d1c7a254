"""Which partition a table key lives on, and what to tell the operator when records disagree.

A table is partitioned like its source topic: a key lives on the partition the topic's
producers put it on, which depends on their client's partitioner (murmur2 for Java,
CRC32 for librdkafka, FNV-1a for Sarama; see streams.kafka.partitioner). The table takes the
partitioner of its `source` topic from the settings (`KEY_PARTITIONER`,
`KEY_PARTITIONER_TOPICS`); without a declared source, the one shared by the topics the
app's agents read.

A record whose key is elsewhere raises `KeyPlacementError`, which names the hashes that
do place the key there: the dead letter carries that reason, `Misplacements` counts the
dead letters per topic (metric and `/ready`) and logs one summary line per topic at most
once a minute, the first a few seconds after the first such record.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.errors import KeyPlacementError, SettingsError
from streams.kafka.partitioner import hash_of, hash_placements, key_placer, setting_for_hash
from streams.observability import metrics
from streams.processing.models import Message

log = logging.getLogger(__name__)

#: Shortest time between two summary lines about the same topic.
LOG_INTERVAL_S = 60.0
#: How long the first summary line of a topic waits for more records to judge by.
FIRST_LOG_DELAY_S = 5.0


class KeyPlacement:
    """Where a table's keys live, for tables (`PerKeyTable`, `WindowedTable`) that set
    `_partitioner` when they are bound and give their Faust table and the bytes a key is
    hashed by."""

    _partitioner: str
    #: `partition_of`'s hash with the partition count bound; None until first used after
    #: binding (`bind` resets it).
    _place: Callable[[bytes], int] | None = None

    @property
    def faust_table(self) -> Any:
        raise NotImplementedError

    def placement_key(self, key: Any) -> bytes:
        """The bytes the partitioner hashes for `key`."""
        raise NotImplementedError

    @property
    def key_partitioner(self) -> str:
        """The partitioner placing this table's keys (its source topic's)."""
        return self._partitioner

    @property
    def partition_count(self) -> int:
        table = self.faust_table
        return int(table.partitions or table.app.conf.topic_partitions)

    def partition_of(self, key: Any) -> int:
        """The partition the table's key partitioner gives `key`: a record must come from
        this partition to change `key` (see `TableBatch.set`)."""
        place = self._place
        if place is None:
            place = self._place = key_placer(self.partition_count, self._partitioner)
        return place(self.placement_key(key))


def table_partitioner(table: str, source: str | None, partitioner_for: Callable[[str], str],
                      agent_topics: Iterable[str]) -> str:
    """The key partitioner of table `table`: its `source` topic's, else the one every
    agent topic shares (the global default when there are none).

    Raises `SettingsError` when the agents' topics place keys differently and the table
    does not say which of them it is partitioned like.
    """
    if source is not None:
        return partitioner_for(source)
    topics = sorted(set(agent_topics))
    if not topics:
        return partitioner_for("")
    by_hash: dict[str, list[str]] = {}
    for topic in topics:
        by_hash.setdefault(hash_of(partitioner_for(topic)), []).append(topic)
    if len(by_hash) > 1:
        described = "; ".join(f"{', '.join(names)}: {name}" for name, names in by_hash.items())
        raise SettingsError(
            f"KEY_PARTITIONER_TOPICS gives the agents' topics different key partitioners "
            f"({described}): declare the source topic of table {table!r}, e.g. "
            f"PerKeyTable({table!r}, ..., source={topics[0]!r})")
    return partitioner_for(topics[0])


def misplaced_key(message: Message[Any], key: Any, table: str, key_bytes: bytes,
                  expected: int, partitions: int, partitioner: str,
                  topic: str | None = None) -> KeyPlacementError:
    """The error for a record of `message.partition` whose key belongs to `expected`."""
    topic = topic or message.topic
    matches = tuple(hash_placements(key_bytes, message.partition, partitions))
    used = hash_of(partitioner)
    text = (f"{message.coordinates}: key {key!r} of table {table!r} belongs to partition "
            f"{expected} by {partitioner} (the key partitioner of topic {topic}), the "
            f"record came from partition {message.partition}; ")
    if matches:
        settings = [setting_for_hash(name) for name in matches]
        text += (f"this record's partition matches {' and '.join(matches)}, not {used}: "
                 f"set KEY_PARTITIONER={' or '.join(settings)} for topic {topic} "
                 f"(KEY_PARTITIONER_TOPICS={' or '.join(f'{topic}:{s}' for s in settings)}) "
                 "if that is how its producers partition")
    else:
        text += "no known partitioner puts the key there: publish it keyed by the table key"
    return KeyPlacementError(text, topic=topic, partitioner=partitioner, matches=matches)


@dataclass
class _TopicCounts:
    partitioner: str
    records: int = 0
    matches: dict[str, int] = field(default_factory=dict)
    logged_at: float | None = None
    pending: bool = False


class Misplacements:
    """Dead-lettered misplaced records per topic: the metric, `/ready`'s detail and one
    summary log line per topic and `interval` seconds.

    The first line waits `delay` seconds after the first such record, so it covers the
    whole burst (one record alone often fits two hashes by chance).
    """

    def __init__(self, interval: float = LOG_INTERVAL_S, delay: float = FIRST_LOG_DELAY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.delay = delay
        self.clock = clock
        self._topics: dict[str, _TopicCounts] = {}
        self._lock = threading.Lock()

    def record(self, error: KeyPlacementError) -> None:
        """Count one dead-lettered record; schedule the topic's summary line if none is."""
        with self._lock:
            counts = self._topics.get(error.topic)
            if counts is None:
                counts = self._topics[error.topic] = _TopicCounts(error.partitioner)
            counts.records += 1
            for name in error.matches or ("none",):
                counts.matches[name] = counts.matches.get(name, 0) + 1
                metrics.PARTITIONER_MISMATCHES.labels(error.topic, name).inc()
            if counts.pending:
                return
            now = self.clock()
            next_allowed = -math.inf if counts.logged_at is None else \
                counts.logged_at + self.interval
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a script, a unit test): now or not at all
                loop = None
                if now < next_allowed:
                    return
            counts.pending = True
        if loop is None:
            self._log(error.topic)
        else:
            loop.call_later(max(now + self.delay, next_allowed) - now, self._log, error.topic)

    def summary(self) -> dict[str, Any]:
        """Per topic: records dead-lettered as misplaced, the table's partitioner, how
        many records each hash places right, and the settings that would fit them all."""
        with self._lock:
            return {topic: {"records": c.records, "partitioner": c.partitioner,
                            "matches": dict(sorted(c.matches.items())),
                            "suggested": _suggestions(c)}
                    for topic, c in sorted(self._topics.items())}

    def clear(self) -> None:
        with self._lock:
            self._topics.clear()

    def _log(self, topic: str) -> None:
        with self._lock:
            counts = self._topics.get(topic)
            if counts is None or not counts.pending:  # cleared meanwhile
                return
            counts.pending = False
            counts.logged_at = self.clock()
            line = self._summary_line(topic, counts)
        log.warning("%s", line, extra={"topic": topic})

    def _summary_line(self, topic: str, counts: _TopicCounts) -> str:
        found = ", ".join(f"{name} {n}" for name, n in sorted(counts.matches.items(),
                                                               key=lambda item: -item[1]))
        line = (f"topic {topic}: {counts.records} record(s) dead-lettered so far because "
                f"their key is not on the partition {counts.partitioner} gives it "
                f"(partitions matched by: {found})")
        suggested = _suggestions(counts)
        if suggested:
            line += (f"; all of them match {' and '.join(hash_of(s) for s in suggested)}, "
                     f"not {hash_of(counts.partitioner)}: set KEY_PARTITIONER="
                     f"{' or '.join(suggested)} for topic {topic} (KEY_PARTITIONER_TOPICS="
                     f"{' or '.join(f'{topic}:{s}' for s in suggested)})")
        return line + f"; next summary in {self.interval:g}s at the earliest"


def _suggestions(counts: _TopicCounts) -> list[str]:
    """The partitioners whose hash placed every misplaced record (with few records and
    few partitions, more than one can by chance)."""
    return [setting_for_hash(name) for name, n in counts.matches.items()
            if name != "none" and n == counts.records]


#: The worker's counts (one app per process).
MISPLACED = Misplacements()
