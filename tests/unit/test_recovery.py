"""Recovery progress and standby settings, on a Faust app that is built but not started."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from streams import PerKeyTable, Settings, SettingsError, create_app
from streams.state.recovery import RecoveryProgress, remaining_records, tables_recovered
from streams.state.restore import bulk_restore_of


class Totals(faust.Record, serializer="json"):
    count: int = 0


def memory_app(**env: str) -> faust.App:
    settings = Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "recovery-unit", **env})
    table = PerKeyTable("totals", value_type=Totals, default=Totals, register=False)
    return create_app(settings, agents=[], tables=[table])


def changelog(app: faust.App, partition: int) -> TP:
    return TP(app.tables["totals"].changelog_topic.get_topic_name(), partition)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_standby_replicas_and_session_timeout_reach_faust() -> None:
    app = memory_app(TABLE_STANDBY_REPLICAS="2", BROKER_SESSION_TIMEOUT_S="6")
    assert app.conf.table_standby_replicas == 2
    assert app.conf.broker_session_timeout == 6
    assert app.conf.broker_heartbeat_interval == 2  # well below the session timeout
    defaults = memory_app()
    assert defaults.conf.table_standby_replicas == 1
    assert defaults.conf.broker_heartbeat_interval == 3


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("TABLE_STANDBY_REPLICAS", "-1", "an integer from 0 to 16"),
    ("TABLE_STANDBY_REPLICAS", "two", "an integer from 0 to 16"),
    ("BROKER_SESSION_TIMEOUT_S", "1", "a number from 6 to 90"),
])
def test_bad_recovery_settings_are_named(name: str, value: str, allowed: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value) == f"{name}={value!r} is invalid: expected {allowed}"


def test_remaining_records_skip_partitions_not_measured_yet() -> None:
    app = memory_app()
    recovery = app.tables.recovery
    recovery.active_highwaters[changelog(app, 0)] = 99  # end offset 100
    recovery.active_offsets[changelog(app, 0)] = 39
    recovery.active_highwaters[changelog(app, 1)] = 10
    recovery.active_offsets[changelog(app, 1)] = None  # offsets not read yet
    recovery.standby_highwaters[changelog(app, 2)] = 5
    recovery.standby_offsets[changelog(app, 2)] = 5
    assert remaining_records(app) == {(changelog(app, 0), "active"): 60,
                                      (changelog(app, 2), "standby"): 0}


def test_tables_count_as_recovered_only_after_faust_completed_recovery() -> None:
    app = memory_app()
    assert not tables_recovered(app)
    app.tables.recovery.completed.set()
    assert tables_recovered(app)
    app.in_recovery = True
    assert not tables_recovered(app)


async def test_changelog_records_are_counted_by_kind_and_reported_at_rebalance_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = memory_app()
    progress = RecoveryProgress(app)
    await progress.on_start()
    table = app.tables["totals"]
    recovery = app.tables.recovery
    active, standby = changelog(app, 0), changelog(app, 1)
    recovery.active_tps.add(active)
    recovery.standby_tps.add(standby)
    before = {kind: sample("streams_table_recovery_records_total", table="totals",
                           partition=p, kind=kind) for p, kind in (("0", "active"),
                                                                  ("1", "standby"))}

    progress.on_rebalance_start(app)
    for tp, count in ((active, 3), (standby, 2)):
        for _ in range(count):
            await table.on_changelog_event(SimpleNamespace(message=SimpleNamespace(tp=tp)))
    with caplog.at_level(logging.INFO, logger="streams.state.recovery"):
        progress.on_rebalance_end(app, {})

    assert sample("streams_table_recovery_records_total", table="totals", partition="0",
                  kind="active") == before["active"] + 3
    assert sample("streams_table_recovery_records_total", table="totals", partition="1",
                  kind="standby") == before["standby"] + 2
    ready = [r.getMessage() for r in caplog.records if "table totals ready" in r.getMessage()]
    assert len(ready) == 1
    assert "3 changelog records replayed" in ready[0]
    assert "active partitions 0 (3 replayed)" in ready[0]
    assert ready[0].endswith("standby partitions 1")


async def test_records_restored_in_bulk_count_as_active_and_reach_the_ready_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = memory_app()
    restore = bulk_restore_of(app)
    assert restore is not None
    progress = RecoveryProgress(app)
    await progress.on_start()
    active = changelog(app, 2)
    before = sample("streams_table_recovery_records_total", table="totals", partition="2",
                    kind="active")

    progress.on_rebalance_start(app)
    for applied in restore.on_applied:  # as the restore calls them after each write batch
        applied(active, 1_000)
        applied(active, 234)
    app.tables.recovery.active_tps.add(active)
    with caplog.at_level(logging.INFO, logger="streams.state.recovery"):
        progress.on_rebalance_end(app, {})

    assert sample("streams_table_recovery_records_total", table="totals", partition="2",
                  kind="active") == before + 1_234
    ready = [r.getMessage() for r in caplog.records if "table totals ready" in r.getMessage()]
    assert "1,234 changelog records replayed" in ready[0]
    assert "active partitions 2 (1234 replayed)" in ready[0]


def test_bulk_restore_threshold_is_a_setting() -> None:
    app = memory_app(TABLE_BULK_RESTORE_MIN_RECORDS="50000")
    restore = bulk_restore_of(app)
    assert restore is not None and restore.threshold == 50_000
