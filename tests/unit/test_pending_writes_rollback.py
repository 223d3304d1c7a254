"""`PendingWrites` savepoints: a rollback restores the changes as they were when it was
taken, whatever came before it in the window."""

from __future__ import annotations

from types import SimpleNamespace

from streams.state.writes import Change, PendingWrites

TABLE = SimpleNamespace(name="totals")


def change(key: str, value: int) -> Change:
    return Change(TABLE, 0, key, value, key.encode())


def values(writes: PendingWrites) -> dict[str, int]:
    return {key: writes.get(TABLE, key.encode()).value  # type: ignore[union-attr]
            for key in ("a", "b", "c") if writes.get(TABLE, key.encode()) is not None}


def test_a_rollback_restores_replaced_changes_and_drops_new_ones() -> None:
    writes = PendingWrites()
    writes.put(change("a", 1))
    writes.put(change("b", 1))
    writes.keep()  # an earlier batch of the window, final
    outer = writes.savepoint()
    writes.put(change("a", 2))
    inner = writes.savepoint()
    writes.put(change("a", 3))
    writes.put(change("c", 1))
    writes.put(change("c", 2))

    writes.rollback(inner)
    assert values(writes) == {"a": 2, "b": 1}
    writes.put(change("b", 5))
    writes.rollback(outer)
    assert values(writes) == {"a": 1, "b": 1}
    assert len(writes) == 2


def test_kept_changes_survive_a_later_rollback() -> None:
    writes = PendingWrites()
    first = writes.savepoint()
    writes.put(change("a", 1))
    writes.keep()
    writes.put(change("a", 2))
    writes.rollback(writes.savepoint())  # nothing since: nothing undone
    assert values(writes) == {"a": 2}
    writes.rollback(first)  # taken before keep: only what came after keep is undone
    assert values(writes) == {"a": 1}
