"""The shutdown deadline: a worker whose shutdown hangs (on a Kafka that is gone) still ends."""

from __future__ import annotations

import subprocess
import sys
import time

from streams.app import EXIT_SHUTDOWN_OVERDUE


def test_a_hanging_shutdown_ends_the_process_with_one_line() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", (
        "import time\n"
        "from streams.app import exit_after\n"
        "exit_after(0.3)\n"
        "time.sleep(30)  # a shutdown waiting on a broker that never answers\n")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_SHUTDOWN_OVERDUE
    assert time.monotonic() - started < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "shutdown did not finish within 0.3s" in lines[0], lines


def test_a_shutdown_that_finishes_is_not_cut_short() -> None:
    done = subprocess.run([sys.executable, "-c", (
        "from streams.app import exit_after\n"
        "exit_after(30)\n"
        "print('done')\n")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "done"
