"""Faust's table recovery: ending a recovery from outside its loop."""

from __future__ import annotations

from faust.tables.recovery import Recovery


def end_recovery(recovery: Recovery) -> None:
    """End the recovery round as Faust's recovery loop does once every active changelog
    partition is read up to its highwater: flush the tables' buffers, mark it ended and
    wake the waiters."""
    recovery.flush_buffers()
    recovery._set_recovery_ended()
    recovery.signal_recovery_end.set()
