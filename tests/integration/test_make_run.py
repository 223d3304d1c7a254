"""`make run` as a newcomer uses it: URLs printed, the table shows data, Ctrl-C ends all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from streams.testing import free_port, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_demo_data_and_stops_everything_on_ctrl_c(output_dir: Path) -> None:
    web_port, producer_port = free_port(), free_port()
    env = {**os.environ, "WEB_PORT": str(web_port), "PRODUCER_PORT": str(producer_port)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the newcomer's case: start a broker
    log = output_dir / "make-run.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "tests.support.devrun"], cwd=ROOT,
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "Ctrl-C stops everything" in log.read_text(), 180,
                     "make run to print its URLs")
            text = log.read_text()
            assert f"dashboard:     http://127.0.0.1:{web_port}/" in text
            assert f"producer:      http://127.0.0.1:{producer_port}/" in text

            def customer_totals() -> dict[str, int] | None:
                url = f"http://127.0.0.1:{web_port}/api/tables/customer_totals/customer-007"
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.loads(response.read())["value"]

            totals = wait_for(customer_totals, 60, "demo orders in the table")
            assert totals["orders"] > 0 and totals["amount_cents"] > 0
            with urllib.request.urlopen(f"http://127.0.0.1:{producer_port}/health",
                                        timeout=5) as response:
                assert response.status == 200
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(90)
    assert code == 0, log.read_text()[-2000:]
    assert "stopping the worker and the broker" in log.read_text()
    for port in (web_port, producer_port):
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
