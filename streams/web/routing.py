"""Table lookups go to the worker owning the key's partition under the table's partitioner.

Faust's router hashes the key with its producer's partitioner (murmur2), which is the
wrong worker for a table whose source topic is written by, say, librdkafka (CRC32). This
router asks the platform table where the key lives (`partition_of`, the source topic's
KEY_PARTITIONER) and forwards to the worker that has that changelog partition active in
the group's assignment. Faust's `app.table_route` uses it unchanged; tables that are not
platform tables keep Faust's routing.
"""

from __future__ import annotations

from typing import Any

from faust.app.router import Router
from yarl import URL


class TableRouter(Router):
    """`Router` (Faust's `Router` setting) routing platform tables by their partitioner."""

    def key_store(self, table_name: str, key: Any) -> URL:
        """The web URL of the worker serving `key` of `table_name`; KeyError if none
        does yet (Faust answers 503)."""
        table = next((t for t in getattr(self.app, "platform_tables", ())
                      if t.name == table_name), None)
        if table is None:
            return super().key_store(table_name, key)
        topic = table.faust_table.changelog_topic.get_topic_name()
        partition = table.partition_of(key)
        for url, topics in self.app.assignor.table_metadata(topic).items():
            if partition in topics.get(topic, ()):
                return URL(url)
        raise KeyError(f"no worker serves partition {partition} of table {table_name!r}")
