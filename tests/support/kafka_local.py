"""A real Apache Kafka on loopback, for development, tests and `make run`.

The broker jars of one pinned Kafka release are resolved from Maven Central with `mvn`
into a cache outside the repository (reused across runs), KRaft storage is formatted, and
one combined broker+controller (or a 3-node cluster for fault tests) is started with a
bounded heap. `start()` returns only once the cluster answers metadata requests with every
broker; `stop()` leaves no JVM behind, and JVMs started for a Python process also die with
that process (PR_SET_PDEATHSIG), so a killed test run cannot leak brokers.

Command line (used by the Makefile)::

    python -m tests.support.kafka_local start   # background; last line KAFKA_BOOTSTRAP_SERVERS=...
    python -m tests.support.kafka_local stop    # also deletes the broker's topics and data
    python -m tests.support.kafka_local status

The background broker belongs to the checkout it was started from: its state folder and
its port are derived from the checkout's path, so two checkouts on one machine run two
brokers and stopping one never deletes the other's topics. When the derived port is taken
anyway, `start` says which checkout's broker holds it.

`LocalKafka(secure=SecureListener(...))` adds a second listener speaking SASL_SSL (TLS with
the given PEM certificate, SASL/SCRAM users created when the storage is formatted), for
tests of the client options; the PLAINTEXT listener stays for the launcher's own checks.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streams.errors import KafkaLauncherError
from streams.kafka.client_options import client_options

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# Kafka's own distribution ships this binding; the Maven artifact leaves slf4j unbound,
# which would make the broker silent.
LOG4J_VERSION = "2.24.3"

DEFAULT_HEAP = "512m"
_PR_SET_PDEATHSIG = 1


def cache_dir() -> Path:
    """Where resolved jars live: outside the repository, shared by every checkout."""
    base = os.environ.get("STREAMS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "streams-platform"
    )
    return Path(base)


#: The checkout this module belongs to: the owner of `make kafka`'s broker.
CHECKOUT = Path(__file__).resolve().parents[2]
#: Background brokers listen on a port in [PORT_BASE, PORT_BASE + PORT_SPAN).
PORT_BASE = 29100
PORT_SPAN = 900


def _checkout_hash(checkout: Path) -> str:
    return hashlib.sha1(str(checkout).encode()).hexdigest()


def brokers_dir() -> Path:
    """Where every checkout's background broker keeps its state, one folder each."""
    return cache_dir() / "local-brokers"


def state_dir(checkout: Path = CHECKOUT) -> Path:
    """Where `make kafka` keeps the checkout's background broker: data, logs, pid file."""
    override = os.environ.get("STREAMS_STATE_DIR")
    if override:
        return Path(override)
    return brokers_dir() / f"{checkout.name}-{_checkout_hash(checkout)[:8]}"


def checkout_port(checkout: Path = CHECKOUT) -> int:
    """The port of the checkout's background broker (the same on every start)."""
    return PORT_BASE + int(_checkout_hash(checkout)[:8], 16) % PORT_SPAN


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.streams</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  status: warn
  Appenders:
    RollingFile:
      name: file
      fileName: "${sys:kafka.logs.dir}/server.log"
      filePattern: "${sys:kafka.logs.dir}/server.log.%i"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      SizeBasedTriggeringPolicy:
        size: 20MB
      DefaultRolloverStrategy:
        max: 2
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
"""


def _require_tool(name: str, what: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaLauncherError(
            f"{name} not found on PATH: the local Kafka broker needs {what}. "
            "Install it, or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    return path


def resolve_jars(version: str = KAFKA_VERSION) -> Path:
    """Resolve the broker's runtime classpath with Maven; return the folder of jars.

    Done once per version: later calls find the finished folder and return at once. A file
    lock makes concurrent first runs (parallel test sessions) wait for each other.
    """
    _require_tool("java", "a JDK (17 or newer)")
    libs = cache_dir() / f"kafka-{version}" / "libs"
    done_marker = libs.parent / ".resolved"
    if done_marker.exists():
        return libs
    mvn = _require_tool("mvn", "Maven to fetch the Kafka jars")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done_marker.exists():
            return libs
        pom = libs.parent / "pom.xml"
        pom.write_text(_POM.format(scala=SCALA_VERSION, kafka=version, log4j=LOG4J_VERSION))
        shutil.rmtree(libs, ignore_errors=True)
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise KafkaLauncherError(
                f"mvn could not resolve org.apache.kafka:kafka_{SCALA_VERSION}:{version}: "
                + " | ".join(tail)
            )
        done_marker.write_text(version)
    return libs


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all sockets stay bound until every port is chosen."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _cluster_id() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 bytes without padding, never starting
    # with '-' (the broker's own generator rejects those too).
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM the JVM when the launching process dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setsid()


@dataclass(frozen=True)
class SecureListener:
    """A SASL_SSL listener: the broker's PEM certificate chain and unencrypted key, and
    the SCRAM users (name: password) the storage is formatted with."""

    certificate: Path
    key: Path
    users: dict[str, str]
    mechanism: str = "SCRAM-SHA-512"


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    secure_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"


@dataclass
class LocalKafka:
    """One broker (or a small KRaft cluster) of real Apache Kafka on 127.0.0.1.

    Example::

        with LocalKafka() as kafka:
            print(kafka.bootstrap_servers)      # "127.0.0.1:40123"

        with LocalKafka(brokers=3) as cluster:  # RF 3, min.insync.replicas 2
            cluster.stop_broker(2); cluster.start_broker(2)
    """

    brokers: int = 1
    heap: str = DEFAULT_HEAP
    directory: Path | None = None
    ports: list[int] | None = None
    die_with_parent: bool = True
    start_timeout: float = 90.0
    secure: SecureListener | None = None
    _nodes: list[_Node] = field(default_factory=list, init=False)
    _own_directory: bool = field(default=False, init=False)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self._nodes)

    @property
    def secure_bootstrap_servers(self) -> str:
        """The SASL_SSL listeners (`secure=` given), as host:port,..."""
        if self.secure is None:
            raise KafkaLauncherError("this LocalKafka was started without a secure listener")
        return ",".join(f"127.0.0.1:{node.secure_port}" for node in self._nodes)

    @property
    def replication_factor(self) -> int:
        return 3 if self.brokers >= 3 else 1

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.brokers not in (1, 3):
            raise KafkaLauncherError("LocalKafka runs 1 broker or a 3-broker cluster")
        libs = resolve_jars()
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="streams-kafka-"))
            self._own_directory = True
        free = [p for p in _free_ports(3 * self.brokers + len(self.ports or []))
                if p not in (self.ports or [])]
        ports = self.ports or free[self.brokers:2 * self.brokers]
        self._nodes = [
            _Node(node_id=i + 1, port=ports[i], controller_port=free[i],
                  directory=self.directory / f"node-{i + 1}",
                  secure_port=free[2 * self.brokers + i] if self.secure else None)
            for i in range(self.brokers)
        ]
        cluster_id = _cluster_id()
        try:
            for node in self._nodes:
                self._write_config(node)
                self._format(libs, node, cluster_id)
            for node in self._nodes:
                self._launch(libs, node)
            self.wait_until_ready(self.start_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every broker: SIGTERM for a clean shutdown, SIGKILL if it lingers.

        All nodes get SIGTERM at once: stopped one by one, the last ones lose their
        controller quorum and wait out their shutdown timeouts.
        """
        running = [n.process for n in self._nodes if n.process and n.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for node in self._nodes:
            self._terminate(node, grace=10.0)
        if self._own_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def stop_broker(self, node_id: int) -> None:
        """Stop one broker of the cluster (fault tests)."""
        self._terminate(self._node(node_id))

    def kill_broker(self, node_id: int) -> None:
        """SIGKILL one broker: a crash, not a shutdown."""
        node = self._node(node_id)
        if node.process is not None and node.process.poll() is None:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()

    def start_broker(self, node_id: int) -> None:
        """Start a stopped broker again with its data; returns once the cluster has it back."""
        self._launch(resolve_jars(), self._node(node_id))
        self.wait_until_ready(self.start_timeout)

    def wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        expected = {n.node_id for n in self._nodes if n.process and n.process.poll() is None}
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            for node in self._nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise KafkaLauncherError(
                        f"Kafka node {node.node_id} exited with code {node.process.returncode}; "
                        f"see {node.directory / 'logs' / 'server.log'}"
                    )
            try:
                seen = asyncio.run(_broker_ids(self.bootstrap_servers))
                if expected <= seen:
                    return
                last_error = f"brokers {sorted(seen)} of {sorted(expected)} registered"
            except Exception as exc:  # any connection failure means: not yet
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
        raise KafkaLauncherError(
            f"Kafka did not answer metadata requests within {timeout:.0f}s ({last_error})"
        )

    def _node(self, node_id: int) -> _Node:
        for node in self._nodes:
            if node.node_id == node_id:
                return node
        raise KafkaLauncherError(f"no Kafka node {node_id} in this cluster")

    def _write_config(self, node: _Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self._nodes)
        rf = self.replication_factor
        min_isr = 2 if rf == 3 else 1
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                         f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            **self._secure_settings(node),
            "log.dirs": node.directory / "data",
            "num.partitions": 3,
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Applications declare their topics; a typo should fail, not create a topic.
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            "log.segment.bytes": 64 * 1024 * 1024,
            "log.retention.check.interval.ms": 60000,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        node.config_path.write_text(
            "".join(f"{key}={value}\n" for key, value in settings.items())
        )
        (node.directory / "log4j2.yaml").write_text(_LOG4J2)

    def _secure_settings(self, node: _Node) -> dict[str, object]:
        """The SASL_SSL listener's settings (none without `secure`)."""
        secure = self.secure
        if secure is None:
            return {}
        keystore = node.directory / "broker-keystore.pem"  # Kafka's PEM store: key + chain
        keystore.write_text(secure.key.read_text() + secure.certificate.read_text())
        prefix = "listener.name.secure."
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                         f"SECURE://127.0.0.1:{node.secure_port},"
                         f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                                    f"SECURE://127.0.0.1:{node.secure_port}",
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": secure.mechanism,
            f"{prefix}{secure.mechanism.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": keystore,
        }

    def _java(self, libs: Path, node: _Node, main: str, *args: str,
              heap: str) -> list[str]:
        java = _require_tool("java", "a JDK (17 or newer)")
        logs = node.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return [
            java, "-Xms64m", f"-Xmx{heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile={node.directory / 'log4j2.yaml'}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def _format(self, libs: Path, node: _Node, cluster_id: str) -> None:
        if (node.directory / "data" / "meta.properties").exists():
            return
        scram = [f"--add-scram={self.secure.mechanism}=[name={name},password={password}]"
                 for name, password in self.secure.users.items()] if self.secure else []
        command = self._java(libs, node, "kafka.tools.StorageTool", "format",
                             "-t", cluster_id, "-c", str(node.config_path), *scram,
                             heap="256m")
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise KafkaLauncherError(
                f"formatting KRaft storage failed: {(result.stdout + result.stderr).strip()}"
            )

    def _launch(self, libs: Path, node: _Node) -> None:
        command = self._java(libs, node, "kafka.Kafka", str(node.config_path), heap=self.heap)
        output = open(node.directory / "logs" / "stdout.log", "ab")  # noqa: SIM115
        node.process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if self.die_with_parent else os.setsid,
        )
        output.close()

    @staticmethod
    def _terminate(node: _Node, grace: float = 20.0) -> None:
        process = node.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
        return True
    return False


async def _broker_ids(bootstrap_servers: str) -> set[int]:
    """Broker ids in the cluster's metadata; empty while no listener accepts connections."""
    from aiokafka import AIOKafkaClient

    if not any(_port_open(address) for address in bootstrap_servers.split(",")):
        return set()
    client = AIOKafkaClient(**client_options(bootstrap_servers), request_timeout_ms=3000)
    # A broker that is still starting refuses connections; aiokafka logs each refusal.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        await asyncio.wait_for(client.bootstrap(), 5)
        return {broker.nodeId for broker in client.cluster.brokers()}
    finally:
        quiet.setLevel(level)
        await client.close()


# -- background broker for `make kafka` ------------------------------------------------

_STATE_FILE = "broker.json"


def _read_state(directory: Path | None = None) -> dict[str, object] | None:
    path = (directory or state_dir()) / _STATE_FILE
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def port_owner(port: int) -> str | None:
    """The checkout whose running background broker listens on `port`, if any."""
    folders = [state_dir(), *sorted(brokers_dir().glob("*"))]
    for folder in folders:
        state = _read_state(folder)
        if (state and _alive(int(str(state["pid"])))
                and str(state["bootstrap_servers"]).endswith(f":{port}")):
            return str(state.get("checkout", folder))
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_background(port: int | None = None) -> str:
    """Start the checkout's broker detached from this process; return its bootstrap servers.

    `port` defaults to the checkout's own (`checkout_port`). Raises `KafkaLauncherError`
    naming the owner when the port is taken.
    """
    state = _read_state()
    if state and _alive(int(str(state["pid"]))):
        return str(state["bootstrap_servers"])
    port = checkout_port() if port is None else port
    if _port_open(f"127.0.0.1:{port}"):
        owner = port_owner(port)
        raise KafkaLauncherError(
            f"port {port} is taken by the local Kafka of checkout {owner}: use that one, "
            "stop it there with `make kafka-stop`, or pass --port" if owner else
            f"port {port} is taken by a process that is not a local Kafka of any checkout: "
            "pass --port")
    directory = state_dir()
    shutil.rmtree(directory, ignore_errors=True)
    kafka = LocalKafka(directory=directory, ports=[port], die_with_parent=False)
    kafka.start()
    node = kafka._nodes[0]
    assert node.process is not None
    (directory / _STATE_FILE).write_text(json.dumps(
        {"pid": node.process.pid, "bootstrap_servers": kafka.bootstrap_servers,
         "checkout": str(CHECKOUT)}
    ))
    return kafka.bootstrap_servers


def stop_background(timeout: float = 30.0) -> bool:
    """Stop the checkout's broker and delete its state (so its topics); return whether one
    was running."""
    state = _read_state()
    if not state:
        return False
    pid = int(str(state["pid"]))
    running = _alive(pid)
    if running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(state_dir(), ignore_errors=True)
    return running


@contextlib.contextmanager
def kafka_for_session(brokers: int = 1) -> Iterator[str]:
    """Yield bootstrap servers: `KAFKA_BOOTSTRAP_SERVERS` if set, else a started LocalKafka."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing and brokers == 1:
        yield existing
        return
    with LocalKafka(brokers=brokers) as kafka:
        yield kafka.bootstrap_servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.kafka_local")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the local broker in the background")
    start.add_argument("--port", type=int, default=None,
                       help="default: this checkout's own port (from its path)")
    sub.add_parser("stop", help="stop the background broker, deleting its topics")
    sub.add_parser("status", help="say whether the background broker runs")
    sub.add_parser("resolve", help="only resolve the Kafka jars into the cache")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
                servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
                print("KAFKA_BOOTSTRAP_SERVERS is set: using that cluster, starting nothing")
            else:
                started = time.monotonic()
                servers = start_background(args.port)
                print(f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - started:.1f}s "
                      f"(logs: {state_dir()})")
            print(f"KAFKA_BOOTSTRAP_SERVERS={servers}")
        elif args.command == "stop":
            directory = state_dir()
            if stop_background():
                print(f"local Kafka of {CHECKOUT} stopped; its topics and data "
                      f"({directory}) are deleted")
            else:
                print("no local Kafka was running")
        elif args.command == "status":
            state = _read_state()
            if state and _alive(int(str(state["pid"]))):
                print(f"local Kafka of {state.get('checkout', CHECKOUT)} "
                      f"(state: {state_dir()})")
                print(f"KAFKA_BOOTSTRAP_SERVERS={state['bootstrap_servers']}")
            else:
                print(f"no local Kafka of {CHECKOUT} running")
                return 1
        elif args.command == "resolve":
            print(resolve_jars())
    except KafkaLauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
