"""Faust's current event, which table writes read to choose their changelog partition."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

from faust.streams import _current_event
from faust.types import EventT


@contextlib.contextmanager
def event_scope(event: EventT) -> Iterator[None]:
    """Make `event` Faust's current event for the duration of the block.

    This is the same context variable Faust's own stream loop sets for each event
    (`faust.streams.Stream._set_current_event`).
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
