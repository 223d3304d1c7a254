import re
from pathlib import Path

import pytest

from streams.errors import SettingsError
from streams.settings import Secret, Settings


def test_defaults_work_on_a_laptop() -> None:
    settings = Settings.from_env({})
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 8881)
    assert settings.producer_port == 8888
    assert (settings.batch_size, settings.flush_interval, settings.flush_max_retries) == (
        100, 1.0, 3)
    assert settings.table_store == "rocksdb"
    assert settings.data_dir == Path("var/data")


def test_values_are_parsed_and_normalised() -> None:
    settings = Settings.from_env({
        "KAFKA_BOOTSTRAP_SERVERS": " a:9092, b:9093 ", "WEB_PORT": "9000",
        "FLUSH_INTERVAL_MS": "250", "PROCESSING_GUARANTEE": "EXACTLY_ONCE",
        "TABLE_STORE": "memory", "BROKER_CONNECT_TIMEOUT_S": "2.5",
    })
    assert settings.bootstrap_servers == "a:9092,b:9093"
    assert settings.web_port == 9000
    assert settings.flush_interval == 0.25
    assert settings.processing_guarantee == "exactly_once"
    assert settings.table_store == "memory"
    assert settings.broker_connect_timeout_s == 2.5


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("WEB_PORT", "abc", "an integer from 1 to 65535"),
    ("WEB_PORT", "70000", "an integer from 1 to 65535"),
    ("BATCH_SIZE", "0", "an integer from 1 to 100000"),
    ("GC_YOUNG_THRESHOLD", "-1", "an integer from 0 to 10000000"),
    ("FETCH_MAX_WAIT_MS", "0", "an integer from 1 to 30000"),
    ("FLUSH_INTERVAL_MS", "-5", "an integer from 1 to 3600000"),
    ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "a comma-separated list of host:port"),
    ("PROCESSING_GUARANTEE", "maybe_once", "one of at_least_once, exactly_once"),
    ("TABLE_STORE", "redis", "one of rocksdb, memory"),
    ("APP_ID", "has space", "letters, digits"),
    ("BROKER_CONNECT_TIMEOUT_S", "soon", "a number from 1 to 300"),
    ("KEY_PARTITIONER", "crc32", "one of murmur2, murmur2_random, consistent, "
                                 "consistent_random, fnv1a"),
    ("KEY_PARTITIONER_TOPICS", "orders=fnv1a", "comma-separated topic:partitioner pairs"),
    ("KEY_PARTITIONER_TOPICS", "orders:crc32", "partitioner one of murmur2"),
    ("KEY_PARTITIONER_TOPICS", "bad topic:fnv1a", "topic:partitioner pairs"),
    ("ALLOW_UNVERIFIED_DEPENDENCIES", "maybe", "1/true/yes/on or 0/false/no/off"),
])
def test_bad_value_is_refused_naming_the_variable(name: str, value: str, allowed: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    message = str(info.value)
    assert message.startswith(f"{name}={value!r} is invalid")
    assert allowed in message
    assert "\n" not in message


def test_sasl_settings_are_required_together() -> None:
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME set without "
                                            "KAFKA_SASL_MECHANISM, KAFKA_SASL_PASSWORD"):
        Settings.from_env({"KAFKA_SASL_USERNAME": "svc"})
    settings = Settings.from_env({"KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "pw",
                                  "KAFKA_SASL_MECHANISM": "scram-sha-512"})
    assert settings.sasl_mechanism == "SCRAM-SHA-512"


def test_password_never_shows_in_repr_or_errors() -> None:
    settings = Settings.from_env({"KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "hunter2",
                                  "KAFKA_SASL_MECHANISM": "PLAIN"})
    assert isinstance(settings.sasl_password, Secret)
    assert "hunter2" not in repr(settings)


def test_ports_must_differ_on_the_same_host() -> None:
    with pytest.raises(SettingsError, match="WEB_PORT and PRODUCER_PORT"):
        Settings.from_env({"WEB_PORT": "8888"})


def test_key_partitioner_per_topic_with_a_global_default() -> None:
    settings = Settings.from_env({"KEY_PARTITIONER": "Consistent_Random",
                                  "KEY_PARTITIONER_TOPICS": "orders:fnv1a, clicks:murmur2"})
    assert settings.key_partitioner_for("orders") == "fnv1a"
    assert settings.key_partitioner_for("clicks") == "murmur2"
    assert settings.key_partitioner_for("payments") == "consistent_random"
    assert Settings.from_env({}).key_partitioner_for("orders") == "murmur2"


def test_every_setting_is_documented() -> None:
    rows = Settings.describe()
    assert all(doc for _, _, doc in rows)
    assert "KAFKA_BOOTSTRAP_SERVERS" in {name for name, _, _ in rows}


def test_wildcard_bind_is_advertised_by_host_name_unless_told() -> None:
    import socket

    wildcard = {"WEB_HOST": "0.0.0.0", "API_TOKEN": "t0ken"}
    assert Settings.from_env(wildcard).web_url == f"http://{socket.gethostname()}:8881"
    settings = Settings.from_env({**wildcard, "WEB_ADVERTISED_HOST": "worker-1"})
    assert settings.web_url == "http://worker-1:8881"


def test_batch_config_file_uses_the_seed_keys_and_env_wins(tmp_path: Path) -> None:
    config = tmp_path / "batch.json"
    config.write_text('{"readBatchSize": 250, "flushInterval": 500, "flushMaxRetries": 5}')
    settings = Settings.from_env({"BATCH_CONFIG_FILE": str(config)})
    assert (settings.batch_size, settings.flush_interval_ms, settings.flush_max_retries) == (
        250, 500, 5)
    settings = Settings.from_env({"BATCH_CONFIG_FILE": str(config), "BATCH_SIZE": "10"})
    assert settings.batch_size == 10


@pytest.mark.parametrize(("content", "message"), [
    ('{"readBatchSize": 0}', "BATCH_SIZE='0' is invalid"),
    ('{"batchSize": 10}', "unknown keys ['batchSize']"),
    ("[1]", "must hold a JSON object"),
    ("{oops", "is not valid JSON"),
])
def test_bad_batch_config_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "batch.json"
    config.write_text(content)
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({"BATCH_CONFIG_FILE": str(config)})


def test_missing_batch_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="BATCH_CONFIG_FILE=.* cannot be read"):
        Settings.from_env({"BATCH_CONFIG_FILE": str(tmp_path / "missing.json")})
