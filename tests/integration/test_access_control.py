"""Access control on a real worker and broker: the token, the console modes, browser safety
and the refusal to serve an open port without a token."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.testing import WorkerProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "integration-token-" + "7" * 24


def call(worker: WorkerProcess, method: str, path: str, body: Any = None, *,
         token: str | None = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(worker.url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _body(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def start_worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, name: str,
                 **env: str) -> WorkerProcess:
    log_dir = ROOT / "test-output" / "test_access_control"
    log_dir.mkdir(parents=True, exist_ok=True)
    process = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "APP_ID": f"access-{name}-{random.randrange(1 << 30):x}",
        "DATA_DIR": str(tmp_path_factory.mktemp(f"access-{name}")), **env,
    }, log_path=log_dir / f"{name}.log")
    process.start()
    try:
        process.wait_ready(timeout=120)
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[WorkerProcess]:
    """A worker with API_TOKEN: writes need it, reads do not."""
    process = start_worker(kafka_bootstrap, tmp_path_factory, "token", API_TOKEN=TOKEN)
    yield process
    process.stop()


def topic_exists(worker: WorkerProcess, name: str) -> bool:
    status, _ = call(worker, "GET", f"/api/topics/{name}")
    return status == 200


def test_a_write_needs_the_token(worker: WorkerProcess) -> None:
    name = f"access-{random.randrange(1 << 30):x}"
    status, body = call(worker, "POST", "/api/topics", {"name": name, "partitions": 1})
    assert status == 401 and "Authorization: Bearer" in body["error"]
    status, _ = call(worker, "POST", "/api/topics", {"name": name, "partitions": 1},
                     token="not-" + TOKEN)
    assert status == 401
    assert not topic_exists(worker, name)
    status, body = call(worker, "POST", "/api/topics", {"name": name, "partitions": 1},
                        token=TOKEN)
    assert status == 201, body
    assert topic_exists(worker, name)


def test_reads_stay_open_and_say_a_token_is_needed_for_writes(worker: WorkerProcess) -> None:
    assert call(worker, "GET", "/api/topics")[0] == 200
    assert call(worker, "GET", "/health")[0] == 200
    assert call(worker, "GET", "/api/console")[1] == {"mode": "read-write", "token": "writes"}


def test_a_cross_site_request_changes_nothing(worker: WorkerProcess) -> None:
    """What a page in the user's browser could send: text/plain, a foreign Origin."""
    name = f"access-xsite-{random.randrange(1 << 30):x}"
    body = json.dumps({"name": name, "partitions": 1}).encode()
    status, _ = call(worker, "POST", "/api/topics", raw=body, token=TOKEN,
                     headers={"Content-Type": "text/plain"})
    assert status == 415
    status, answer = call(worker, "POST", "/api/topics", raw=body, token=TOKEN,
                          headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in answer["error"]
    status, _ = call(worker, "POST", "/api/topics", raw=body, token=TOKEN,
                     headers={"Origin": worker.url})
    assert status == 201
    assert topic_exists(worker, name)


def test_a_rebound_host_name_cannot_read(worker: WorkerProcess) -> None:
    status, answer = call(worker, "GET", "/api/topics",
                          headers={"Host": f"rebound.example:{worker.port}"})
    assert status == 403 and "API_ALLOWED_HOSTS" in answer["error"]
    assert call(worker, "GET", "/api/topics", headers={"Host": f"localhost:{worker.port}"}
                )[0] == 200


def test_the_token_is_not_in_the_log(worker: WorkerProcess) -> None:
    call(worker, "POST", "/api/topics", {"name": "x"}, token=TOKEN + "-wrong")
    assert worker.log_path is not None
    assert TOKEN not in worker.log_path.read_text(errors="replace")


def test_read_only_console_with_protected_reads(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    process = start_worker(kafka_bootstrap, tmp_path_factory, "read-only", API_TOKEN=TOKEN,
                           API_TOKEN_READS="1", CONSOLE_MODE="read-only")
    try:
        assert call(process, "GET", "/api/topics")[0] == 401
        assert call(process, "GET", "/metrics")[0] == 401
        assert call(process, "GET", "/api/topics", token=TOKEN)[0] == 200
        assert call(process, "GET", "/ready")[0] == 200  # probes need no token
        assert call(process, "GET", "/api/console")[1] == {"mode": "read-only", "token": "all"}
        name = f"access-ro-{random.randrange(1 << 30):x}"
        status, _ = call(process, "POST", "/api/topics", {"name": name}, token=TOKEN)
        assert status == 405  # the write route is not mounted at all
        for path in ("/api/groups/g/reset", "/api/dlq/orders/replay",
                     "/api/topics/orders/messages", "/api/topics/orders/partitions"):
            assert call(process, "POST", path, {}, token=TOKEN)[0] in (404, 405), path
        assert call(process, "GET", f"/api/topics/{name}", token=TOKEN)[0] == 404
    finally:
        process.stop()


def test_console_off_leaves_probes_and_table_views(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    process = start_worker(kafka_bootstrap, tmp_path_factory, "off", CONSOLE_MODE="off")
    try:
        assert call(process, "GET", "/api/topics")[0] == 404
        assert call(process, "POST", "/api/topics", {"name": "x"})[0] in (404, 405)
        assert call(process, "GET", "/api/tables")[0] == 200
        assert call(process, "GET", "/health")[0] == 200
    finally:
        process.stop()


@pytest.mark.parametrize("command", ["worker", "producer"])
def test_an_open_bind_without_a_token_refuses_to_start_with_one_line(
        command: str, kafka_bootstrap: str) -> None:
    variable = "WEB_HOST" if command == "worker" else "PRODUCER_HOST"
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           variable: "0.0.0.0"}
    done = subprocess.run([sys.executable, str(ROOT / "worker.py"), command], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}='0.0.0.0' is not a loopback address")
    assert "API_TOKEN" in lines[0]
