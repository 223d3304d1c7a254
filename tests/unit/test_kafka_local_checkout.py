"""`make kafka` per checkout: its own state folder and port, and who holds a taken port."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from streams.errors import KafkaLauncherError
from tests.support import kafka_local


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STREAMS_STATE_DIR", raising=False)


def test_two_checkouts_get_their_own_state_folder_and_port() -> None:
    one, two = Path("/work/one/repo"), Path("/work/two/repo")
    assert kafka_local.state_dir(one) != kafka_local.state_dir(two)
    assert kafka_local.state_dir(one) == kafka_local.state_dir(Path("/work/one/repo"))
    assert kafka_local.checkout_port(one) != kafka_local.checkout_port(two)
    for checkout in (one, two):
        assert kafka_local.PORT_BASE <= kafka_local.checkout_port(checkout) < (
            kafka_local.PORT_BASE + kafka_local.PORT_SPAN)


def test_a_taken_port_names_the_checkout_whose_broker_holds_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        other = kafka_local.brokers_dir() / "other-checkout"
        other.mkdir(parents=True)
        (other / "broker.json").write_text(json.dumps({
            "pid": os.getpid(), "bootstrap_servers": f"127.0.0.1:{port}",
            "checkout": "/work/other"}))
        assert kafka_local.port_owner(port) == "/work/other"
        with pytest.raises(KafkaLauncherError, match=f"port {port} is taken by the local "
                           "Kafka of checkout /work/other"):
            kafka_local.start_background(port)


def test_a_port_taken_by_something_else_says_so() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(KafkaLauncherError, match="not a local Kafka of any checkout"):
            kafka_local.start_background(port)
