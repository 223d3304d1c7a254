"""Cluster administration through aiokafka's admin client: the topics the app needs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.errors import TopicMismatchError
from streams.kafka.client_options import client_options
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


async def ensure_topics(cluster: Settings | str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that don't exist yet; return the names created.

    `cluster`: the settings, or bootstrap servers of a PLAINTEXT cluster.

    An existing topic with another partition count is an error: keyed state and dead
    letters rely on the partitioning the app was configured with.
    """
    wanted = {spec.name: spec for spec in specs}
    admin = AIOKafkaAdminClient(**client_options(cluster))
    await admin.start()
    try:
        existing = await _partition_counts(admin, list(wanted))
        for name, count in existing.items():
            if count != wanted[name].partitions:
                raise TopicMismatchError(
                    f"topic {name!r} has {count} partitions, the app expects "
                    f"{wanted[name].partitions} (TOPIC_PARTITIONS); use a topic with the "
                    "same count or change the setting")
        missing = [spec for name, spec in wanted.items() if name not in existing]
        if missing:
            # another worker may create them at the same moment
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([
                    NewTopic(spec.name, spec.partitions, spec.replication,
                             topic_configs=spec.config)
                    for spec in missing
                ])
            log.info("created topics %s", ", ".join(spec.name for spec in missing))
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    present = set(await admin.list_topics()) & set(names)
    if not present:
        return {}
    described = await admin.describe_topics(sorted(present))
    return {entry["topic"]: len(entry["partitions"]) for entry in described
            if entry.get("error_code", 0) == 0}
