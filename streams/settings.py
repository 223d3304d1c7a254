"""Settings: one frozen object read from environment variables and validated at start.

Every variable has a default that works on a laptop. A bad value raises `SettingsError`
whose message names the variable, the value and what is allowed; `worker.py` prints that
one line and exits with status 2.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from streams.errors import SettingsError
from streams.kafka.partitioner import KEY_PARTITIONERS

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]
TableStore = Literal["rocksdb", "memory"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
ConsoleMode = Literal["off", "read-only", "read-write"]

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class Secret(str):
    """A string that never shows itself in repr or logs."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"a number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"a number from {low} to {high}")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        for option in allowed:
            if raw.lower() == option.lower():
                return option
        raise ValueError("one of " + ", ".join(allowed))

    return parse


def _bootstrap(raw: str) -> str:
    servers = [part.strip() for part in raw.split(",") if part.strip()]
    if not servers or not all(_HOST_PORT.match(s) for s in servers):
        raise ValueError("a comma-separated list of host:port")
    return ",".join(servers)


def _name(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._\-]{1,200}", raw):
        raise ValueError("letters, digits, '.', '_' or '-' (1 to 200 characters)")
    return raw


def _text(raw: str) -> str:
    if not raw:
        raise ValueError("a non-empty string")
    return raw


def _modules(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not names or not all(re.fullmatch(r"[A-Za-z_][\w.]*", n) for n in names):
        raise ValueError("a comma-separated list of Python module names")
    return names


def _topic_partitioners(raw: str) -> tuple[tuple[str, str], ...]:
    """`orders:consistent_random,clicks:fnv1a` -> (("orders", "consistent_random"), ...)."""
    allowed = _choice(*KEY_PARTITIONERS)
    pairs = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        topic, _, name = part.rpartition(":")
        try:
            pairs.append((_name(topic.strip()), allowed(name.strip())))
        except ValueError:
            raise ValueError("comma-separated topic:partitioner pairs, partitioner one of "
                             + ", ".join(KEY_PARTITIONERS)) from None
    return tuple(pairs)


def _secret(raw: str) -> Secret:
    return Secret(_text(raw))


def _flag(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("1/true/yes/on or 0/false/no/off")


def _hosts(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip().lower().strip("[]") for part in raw.split(",") if part.strip())
    if not names or not all(re.fullmatch(r"\*|[a-z0-9.\-:]{1,253}", n) for n in names):
        raise ValueError("a comma-separated list of host names or addresses, or *")
    return names


def is_loopback(host: str) -> bool:
    """Whether binding `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


def _read_token_file(path: Path) -> Secret:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"API_TOKEN_FILE={str(path)!r} cannot be read: "
                            f"{exc.strerror}") from None
    if not token:
        raise SettingsError(f"API_TOKEN_FILE={str(path)!r} is empty: put the token in it")
    return Secret(token)


def _readable_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError("a readable file")
    return path


#: Keys of the batch configuration file (the seed's names) and the settings they set.
BATCH_CONFIG_KEYS = {
    "readBatchSize": "BATCH_SIZE",
    "flushInterval": "FLUSH_INTERVAL_MS",
    "flushMaxRetries": "FLUSH_MAX_RETRIES",
}


def _batch_config_file(path: str | None) -> dict[str, str]:
    """Settings from a JSON file like {"readBatchSize": 100, "flushInterval": 1000, ...}.

    Environment variables win over the file.
    """
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(f"BATCH_CONFIG_FILE={path!r} cannot be read: "
                            f"{exc.strerror}") from None
    except ValueError as exc:
        raise SettingsError(f"BATCH_CONFIG_FILE={path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"BATCH_CONFIG_FILE={path!r} must hold a JSON object")
    unknown = sorted(set(data) - set(BATCH_CONFIG_KEYS))
    if unknown:
        raise SettingsError(f"BATCH_CONFIG_FILE={path!r} has unknown keys {unknown}: "
                            f"allowed are {sorted(BATCH_CONFIG_KEYS)}")
    return {BATCH_CONFIG_KEYS[key]: str(value) for key, value in data.items()}


def _env(
    name: str, parse: Callable[[str], Any], default: Any, doc: str
) -> Any:
    return field(default=default, metadata={"env": name, "parse": parse, "doc": doc})


def read_env_fields(cls: type[Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Parse the variables of a dataclass whose fields were declared with `_env`.

    Unset or empty variables are left out (the field keeps its default); the first bad
    value raises `SettingsError` naming the variable and what is allowed.
    """
    values: dict[str, Any] = {}
    for spec in fields(cls):
        name = spec.metadata["env"]
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[spec.name] = spec.metadata["parse"](raw.strip())
        except ValueError as exc:
            shown = "***" if "PASSWORD" in name or "TOKEN" in name else raw
            raise SettingsError(f"{name}={shown!r} is invalid: expected {exc}") from None
    return values


@dataclass(frozen=True)
class Settings:
    """The platform's configuration. Build it with `Settings.from_env()`."""

    bootstrap_servers: str = _env(
        "KAFKA_BOOTSTRAP_SERVERS", _bootstrap, "127.0.0.1:9092",
        "Kafka cluster to use, host:port[,host:port...]")
    app_id: str = _env(
        "APP_ID", _name, "streams-platform",
        "Faust app id: names the consumer group and prefixes changelog topics")
    web_host: str = _env("WEB_HOST", _text, "127.0.0.1", "address the worker web binds")
    web_port: int = _env("WEB_PORT", _int(1, 65535), 8881, "worker web port")
    web_advertised_host: str | None = _env(
        "WEB_ADVERTISED_HOST", _text, None,
        "host other workers use to reach this one (table lookups); default WEB_HOST, "
        "or the machine's host name when WEB_HOST is 0.0.0.0")
    producer_host: str = _env(
        "PRODUCER_HOST", _text, "127.0.0.1", "address the producer service binds")
    producer_port: int = _env("PRODUCER_PORT", _int(1, 65535), 8888, "producer service port")
    batch_config_file: Path | None = _env(
        "BATCH_CONFIG_FILE", lambda raw: Path(_text(raw)), None,
        "JSON file with readBatchSize, flushInterval (ms), flushMaxRetries")
    deployment_modules: tuple[str, ...] = _env(
        "DEPLOYMENT_MODULES", _modules, ("tables", "agents"),
        "modules or packages (imported from the project folder) declaring tables and agents")
    data_dir: Path = _env(
        "DATA_DIR", lambda raw: Path(_text(raw)), Path("var/data"),
        "where the worker keeps table state (RocksDB)")
    table_store: TableStore = _env(
        "TABLE_STORE", _choice("rocksdb", "memory"), "rocksdb", "table storage backend")
    table_standby_replicas: int = _env(
        "TABLE_STANDBY_REPLICAS", _int(0, 16), 1,
        "other workers that keep a warm copy of each table partition (Faust standbys)")
    table_cache_size: int = _env(
        "TABLE_CACHE_SIZE", _int(0, 100_000_000), 100_000,
        "keys per table whose values a worker keeps in memory in front of RocksDB (0: none)")
    table_bulk_restore_min_records: int = _env(
        "TABLE_BULK_RESTORE_MIN_RECORDS", _int(0, 10**15), 1_000,
        "changelog records left to restore from which a worker restores its active RocksDB "
        "table partitions in bulk; fewer are read by Faust's per-record recovery")
    table_recovery_log_interval_s: float = _env(
        "TABLE_RECOVERY_LOG_INTERVAL_S", _float(0.1, 3600), 5.0,
        "while a worker restores table partitions from their changelogs, seconds between "
        "its progress lines (one per table: records done and left, records/s)")
    topic_partitions: int = _env(
        "TOPIC_PARTITIONS", _int(1, 10000), 3, "partitions of topics the app creates")
    topic_replication: int = _env(
        "TOPIC_REPLICATION", _int(1, 16), 1, "replication factor of topics the app creates")
    batch_size: int = _env(
        "BATCH_SIZE", _int(1, 100_000), 100, "records per batch (readBatchSize)")
    flush_interval_ms: int = _env(
        "FLUSH_INTERVAL_MS", _int(1, 3_600_000), 1000,
        "longest wait before a partial batch is handled (flushInterval)")
    commit_interval_ms: int = _env(
        "COMMIT_INTERVAL_MS", _int(0, 60_000), 1000,
        "at-least-once: how long a batch agent gathers the table changes of its batches "
        "before writing them to changelog and store together, a key changed by many "
        "batches once (as Kafka Streams' commit.interval.ms); an agent that caught up "
        "(no record for 0.1 s) commits at once; lookups see the changes at once, the "
        "source offsets are committed after them, and a crash repeats up to that much "
        "more work (0: each batch on its own)")
    stream_buffer_size: int = _env(
        "STREAM_BUFFER_SIZE", _int(100, 10_000_000), 65_536,
        "records an agent may hold fetched but not yet handled; past 80% of it the worker "
        "stops fetching (memory: about 1 KiB per record plus the record itself; lower it "
        "for large records)")
    fetch_max_wait_ms: int = _env(
        "FETCH_MAX_WAIT_MS", _int(1, 30_000), 100,
        "longest a fetch waits at the broker for records that are not there yet "
        "(fetch.max.wait.ms; Faust's is 1,500). The worker's consumer has one fetch in "
        "flight per broker: one waiting for quiet partitions (changelogs, the assignor's "
        "topic) holds back the fetch of busy ones for that long")
    gc_young_threshold: int = _env(
        "GC_YOUNG_THRESHOLD", _int(0, 10_000_000), 500_000,
        "allocations between collections of Python's youngest generation in a worker "
        "and the producer service (Python's default is 700, which costs a busy worker a "
        "third of its time; 0 keeps Python's thresholds). A collection scans the records "
        "a commit window holds: below the objects of a busy second's window, it scans "
        "them several times over")
    flush_max_retries: int = _env(
        "FLUSH_MAX_RETRIES", _int(0, 100), 3, "handler retries before dead-lettering")
    retry_backoff_ms: int = _env(
        "RETRY_BACKOFF_MS", _int(0, 600_000), 200, "first retry delay; doubles each retry")
    shutdown_timeout_s: float = _env(
        "SHUTDOWN_TIMEOUT_S", _float(0, 3600), 30.0,
        "on SIGTERM, how long the batch in hand may take to finish before it is abandoned")
    transient_retry_deadline_s: float = _env(
        "TRANSIENT_RETRY_DEADLINE_S", _float(0, 7 * 24 * 3600), 3600.0,
        "how long a batch may wait on a transient failure before the worker stops without "
        "committing it (0: no limit)")
    processing_guarantee: ProcessingGuarantee = _env(
        "PROCESSING_GUARANTEE", _choice("at_least_once", "exactly_once"), "at_least_once",
        "offset commit semantics")
    broker_connect_timeout_s: float = _env(
        "BROKER_CONNECT_TIMEOUT_S", _float(1, 300), 10.0,
        "how long start-up waits for the cluster before giving up")
    broker_session_timeout_s: float = _env(
        "BROKER_SESSION_TIMEOUT_S", _float(6, 90), 60.0,
        "how long a silent worker keeps its partitions before the group gives them away")
    key_partitioner: str = _env(
        "KEY_PARTITIONER", _choice(*KEY_PARTITIONERS), "murmur2",
        "how the topics' producers place keyed records (tables check keys and route "
        "lookups with it; Publisher publishes with it)")
    key_partitioner_topics: tuple[tuple[str, str], ...] = _env(
        "KEY_PARTITIONER_TOPICS", _topic_partitioners, (),
        "per-topic KEY_PARTITIONER, e.g. orders:consistent_random,clicks:fnv1a")
    log_level: LogLevel = _env(
        "LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", "log level")
    log_format: LogFormat = _env(
        "LOG_FORMAT", _choice("text", "json"), "text", "human-readable or JSON lines")
    sasl_mechanism: SaslMechanism | None = _env(
        "KAFKA_SASL_MECHANISM", _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), None,
        "SASL mechanism; needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    sasl_username: str | None = _env(
        "KAFKA_SASL_USERNAME", _text, None, "SASL user name")
    sasl_password: Secret | None = _env(
        "KAFKA_SASL_PASSWORD", _secret, None, "SASL password (never logged)")
    security_protocol: SecurityProtocol | None = _env(
        "KAFKA_SECURITY_PROTOCOL", _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        None, "how clients talk to Kafka; default SASL_PLAINTEXT when the SASL settings are "
        "given, else PLAINTEXT")
    ssl_cafile: Path | None = _env(
        "KAFKA_SSL_CAFILE", _readable_file, None,
        "PEM file of the CAs that signed the brokers' certificates (default: the system's)")
    ssl_certfile: Path | None = _env(
        "KAFKA_SSL_CERTFILE", _readable_file, None,
        "PEM client certificate, for brokers that require one (mutual TLS)")
    ssl_keyfile: Path | None = _env(
        "KAFKA_SSL_KEYFILE", _readable_file, None,
        "PEM private key of the client certificate, if not in KAFKA_SSL_CERTFILE")
    ssl_key_password: Secret | None = _env(
        "KAFKA_SSL_KEY_PASSWORD", _secret, None,
        "password of an encrypted KAFKA_SSL_KEYFILE (never logged)")
    ssl_check_hostname: bool = _env(
        "KAFKA_SSL_CHECK_HOSTNAME", _flag, True,
        "check that a broker's certificate names the host connected to")
    api_token: Secret | None = _env(
        "API_TOKEN", _secret, None,
        "token every state-changing HTTP request must send as `Authorization: Bearer` "
        "(never logged)")
    api_token_file: Path | None = _env(
        "API_TOKEN_FILE", lambda raw: Path(_text(raw)), None,
        "file holding API_TOKEN (e.g. a Docker secret); set one of the two")
    api_token_reads: bool = _env(
        "API_TOKEN_READS", _flag, False,
        "also require the token for reads (all but /health, /ready and the page assets)")
    api_allowed_hosts: tuple[str, ...] | None = _env(
        "API_ALLOWED_HOSTS", _hosts, None,
        "Host header values the web servers answer (DNS rebinding guard); default "
        "localhost, 127.0.0.1, ::1, the bind and advertised hosts; * for any")
    api_allow_no_token: bool = _env(
        "API_ALLOW_NO_TOKEN", _flag, False,
        "serve on a non-loopback address without API_TOKEN (anyone who reaches the port "
        "can change the cluster)")
    console_mode: ConsoleMode = _env(
        "CONSOLE_MODE", _choice("off", "read-only", "read-write"), "read-write",
        "the worker's dashboard: off, read-only (no write routes) or read-write")
    allow_unverified_dependencies: bool = _env(
        "ALLOW_UNVERIFIED_DEPENDENCIES", _flag, False,
        "start a worker on faust-streaming, mode-streaming or aiokafka versions the Faust "
        "boundary (streams/_faust/INVENTORY.md) was not verified with")

    @property
    def web_url(self) -> str:
        """The URL other workers forward table lookups to."""
        host = self.web_advertised_host or self.web_host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()  # a wildcard bind is not an address to reach
        return f"http://{host}:{self.web_port}"

    def key_partitioner_for(self, topic: str) -> str:
        """The key partitioner of `topic`: its KEY_PARTITIONER_TOPICS entry, else
        KEY_PARTITIONER."""
        return self._key_partitioner_by_topic.get(topic, self.key_partitioner)

    @cached_property
    def _key_partitioner_by_topic(self) -> dict[str, str]:
        # asked per sink record: the tuple of pairs is not searched each time
        return dict(self.key_partitioner_topics)

    @property
    def kafka_security_protocol(self) -> SecurityProtocol:
        """The protocol in use: KAFKA_SECURITY_PROTOCOL, or what the SASL settings imply."""
        if self.security_protocol is not None:
            return self.security_protocol
        return "PLAINTEXT" if self.sasl_mechanism is None else "SASL_PLAINTEXT"

    @property
    def flush_interval(self) -> float:
        """Flush interval in seconds, as Faust's `within=` wants it."""
        return self.flush_interval_ms / 1000

    @property
    def commit_interval(self) -> float:
        """COMMIT_INTERVAL_MS in seconds."""
        return self.commit_interval_ms / 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable; raise `SettingsError` on the first bad one."""
        env = dict(os.environ if environ is None else environ)
        env = {**_batch_config_file(env.get("BATCH_CONFIG_FILE")), **env}
        values = read_env_fields(cls, env)
        if "api_token_file" in values:
            if "api_token" in values:
                raise SettingsError("API_TOKEN and API_TOKEN_FILE are both set: set one")
            values["api_token"] = _read_token_file(values["api_token_file"])
        settings = cls(**values)
        settings._check_together()
        return settings

    def _check_together(self) -> None:
        sasl = {
            "KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.sasl_username,
            "KAFKA_SASL_PASSWORD": self.sasl_password,
        }
        given = [name for name, value in sasl.items() if value is not None]
        if given and len(given) != len(sasl):
            missing = [name for name in sasl if name not in given]
            raise SettingsError(
                f"{', '.join(given)} set without {', '.join(missing)}: "
                "the SASL settings are required together"
            )
        self._check_security()
        if self.api_token is None and not self.api_allow_no_token:
            for name, host in (("WEB_HOST", self.web_host), ("PRODUCER_HOST", self.producer_host)):
                if not is_loopback(host):
                    raise SettingsError(
                        f"{name}={host!r} is not a loopback address and no API_TOKEN is set: "
                        "set API_TOKEN or API_TOKEN_FILE (or API_ALLOW_NO_TOKEN=1 to let "
                        "anyone who reaches the port change the cluster)")
        if self.web_port == self.producer_port and self.web_host == self.producer_host:
            raise SettingsError(
                f"WEB_PORT and PRODUCER_PORT are both {self.web_port}: they must differ"
            )

    def _check_security(self) -> None:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_") and self.sasl_mechanism is None:
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if not protocol.startswith("SASL_") and self.sasl_mechanism is not None:
            raise SettingsError(
                f"KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                f"use SASL: use {'SASL_SSL' if protocol == 'SSL' else 'SASL_PLAINTEXT'}")
        tls = {
            "KAFKA_SSL_CAFILE": self.ssl_cafile,
            "KAFKA_SSL_CERTFILE": self.ssl_certfile,
            "KAFKA_SSL_KEYFILE": self.ssl_keyfile,
            "KAFKA_SSL_KEY_PASSWORD": self.ssl_key_password,
        }
        given = [name for name, value in tls.items() if value is not None]
        if given and protocol not in ("SSL", "SASL_SSL"):
            raise SettingsError(
                f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                "TLS: use SSL or SASL_SSL")
        if self.ssl_certfile is None and (self.ssl_keyfile or self.ssl_key_password):
            raise SettingsError(
                "KAFKA_SSL_KEYFILE or KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_CERTFILE: "
                "the key belongs to a client certificate")

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) for every setting, for docs and `--help`."""
        return [
            (spec.metadata["env"], str(spec.default), spec.metadata["doc"])
            for spec in fields(cls)
        ]
