"""Testing an agent: in memory without a broker, or against a real one.

- `run_agent` runs a batch agent on given records and returns its table state, sink
  records, dead letters and retries (`streams.testing.kit`).
- `WorkerProcess`, `wait_for`, `send_all`, ... run a real worker and fill topics
  (`streams.testing.integration`).
- pytest fixtures for a real broker, unique topic names and a running worker:
  `pytest_plugins = ["streams.testing.fixtures"]` in a test suite's conftest.py.
"""

from streams.testing.integration import (
    WorkerExitedError,
    WorkerProcess,
    assigned_consumer,
    commit_offsets,
    committed_lag,
    end_offsets,
    free_port,
    produce_orders,
    send_all,
    table_matches,
    wait_for,
    write_mark,
)
from streams.testing.kit import (
    AgentRun,
    DeadLetter,
    Record,
    Retry,
    SinkRecord,
    run_agent,
    run_agent_async,
)

__all__ = [
    "AgentRun",
    "DeadLetter",
    "Record",
    "Retry",
    "SinkRecord",
    "WorkerExitedError",
    "WorkerProcess",
    "assigned_consumer",
    "commit_offsets",
    "committed_lag",
    "end_offsets",
    "free_port",
    "produce_orders",
    "run_agent",
    "run_agent_async",
    "send_all",
    "table_matches",
    "wait_for",
    "write_mark",
]
