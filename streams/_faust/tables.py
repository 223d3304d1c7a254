"""Faust tables: the changelog callback, changelog sends, window expiry and the manager's
changelog index."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from faust.tables.base import Collection
from faust.tables.manager import TableManager
from faust.types import AppT, CollectionT, EventT, FutureMessage

ChangelogCallback = Callable[[EventT], Awaitable[None]]


def changelog_table(app: AppT, topic: str) -> CollectionT | None:
    """The table whose changelog topic is `topic`, if any."""
    return cast(TableManager, app.tables)._changelogs.get(topic)


class _ChainedCallback:
    """`callback`, then the changelog callback the table had (`previous`)."""

    def __init__(self, callback: ChangelogCallback, previous: ChangelogCallback | None) -> None:
        self.callback = callback
        self.previous = previous
        #: the table's own `on_changelog_event=` callback, under any added ones
        self.own: ChangelogCallback | None = (
            previous.own if isinstance(previous, _ChainedCallback) else previous)

    async def __call__(self, event: EventT) -> None:
        await self.callback(event)
        if self.previous is not None:
            await self.previous(event)


def add_changelog_callback(table: Collection, callback: ChangelogCallback) -> None:
    """Call `callback` for each changelog event of `table`, before any callback it had.

    Faust keeps the `on_changelog_event=` argument of a table in `_on_changelog_event`
    and awaits it for every changelog record it applies, active or standby.
    """
    table._on_changelog_event = _ChainedCallback(callback, table._on_changelog_event)


def has_own_changelog_callback(table: Collection) -> bool:
    """Whether `table` was given an `on_changelog_event=` callback (which needs every
    changelog record as a Faust event), not counting those `add_changelog_callback` added."""
    current = table._on_changelog_event
    return (current.own if isinstance(current, _ChainedCallback) else current) is not None


def on_changelog_send(table: Collection, sent: Callable[[FutureMessage], None]) -> None:
    """Call `sent` with the future of each changelog record `table` sends.

    Faust writes a table key through `Collection.send_changelog`, which buffers the record
    and returns its future; there is no hook, so the instance's method is wrapped.
    """
    send_changelog = table.send_changelog

    def send_and_track(*args: Any, **kwargs: Any) -> FutureMessage:
        future = send_changelog(*args, **kwargs)
        sent(future)
        return future

    table.send_changelog = send_and_track  # type: ignore[method-assign]


def track_window_expiry(table: Collection, keys: Iterable[tuple[Any, int]]) -> None:
    """Let a windowed table's expiry timer see each `(key, partition)` of `keys` (not
    iterated for other tables)."""
    if table._should_expire_keys():
        for key, partition in keys:
            table._maybe_set_key_ttl(key, partition)


def tracked_window_keys(table: Collection, partition: int, window_end: float) -> set[Any]:
    """The keys a windowed table's expiry timer tracks for (`partition`, `window_end`)."""
    return cast(set[Any], table._partition_timestamp_keys.get((partition, window_end), set()))
