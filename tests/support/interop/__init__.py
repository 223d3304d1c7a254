"""Kafka clients nobody here wrote, with their default settings, for interop tests.

- the Java `KafkaProducer`/`KafkaConsumer` (`KeyedClient.java`, compiled with the JDK
  against the kafka-clients jar the local-broker launcher resolves);
- `kcat` (Debian package, librdkafka), installed by `make clients`.

Records are `(key, value)` pairs of str; neither may contain a tab or a newline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.kafka_local import cache_dir, resolve_jars

SOURCE = Path(__file__).with_name("KeyedClient.java")
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ReadRecord:
    """A record as a client read it."""

    partition: int
    key: str
    value: str
    headers: dict[str, str]


def java_classes() -> Path:
    """KeyedClient compiled (once per source version) into the launcher's cache."""
    libs = resolve_jars()
    version = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = cache_dir() / "interop-java" / version
    if not out.exists():
        # compiled aside and renamed, so a concurrent test session never sees half of it
        building = out.with_name(f"{version}.{os.getpid()}")
        subprocess.run(["javac", "-cp", f"{libs}/*", "-d", str(building), str(SOURCE)],
                       check=True, capture_output=True, timeout=TIMEOUT_S)
        try:
            building.rename(out)
        except OSError:  # another session was first
            shutil.rmtree(building, ignore_errors=True)
    return out


def _java(*args: str, stdin: str = "") -> str:
    classpath = f"{java_classes()}:{resolve_jars()}/*"
    done = subprocess.run(["java", "-cp", classpath, "KeyedClient", *args], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        raise AssertionError(f"KeyedClient {args[0]} failed ({done.returncode}): "
                             f"{done.stderr[-2000:]}")
    return done.stdout


def java_produce(bootstrap: str, topic: str, records: Sequence[tuple[str, str]],
                 ) -> list[tuple[str, int]]:
    """Publish with the Java client's defaults; (key, partition) of each record."""
    lines = _java("produce", bootstrap, topic, stdin=_lines(records))
    return [(key, int(partition)) for key, partition in
            (line.split("\t") for line in lines.splitlines() if line)]


def java_consume(bootstrap: str, topic: str, count: int) -> list[ReadRecord]:
    """The first `count` records of `topic` as the Java consumer reads them."""
    return [_read_record(line) for line in _java("consume", bootstrap, topic,
                                                 str(count)).splitlines() if line]


def kcat() -> str:
    found = shutil.which("kcat")
    if found is None:
        raise RuntimeError("kcat is missing: run `make clients` (apt-get install kcat)")
    return found


def kcat_produce(bootstrap: str, topic: str, records: Sequence[tuple[str, str]]) -> None:
    """Publish keyed records with kcat's (librdkafka's) defaults."""
    subprocess.run([kcat(), "-P", "-b", bootstrap, "-t", topic, "-K", "\t"],
                   input=_lines(records), text=True, check=True, capture_output=True,
                   timeout=TIMEOUT_S)


def kcat_consume(bootstrap: str, topic: str) -> list[ReadRecord]:
    """Every record of `topic` as kcat reads it (from the beginning to the end)."""
    done = subprocess.run(
        [kcat(), "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%p\t%k\t%s\t%h\n"],
        capture_output=True, text=True, check=True, timeout=TIMEOUT_S)
    # kcat separates headers with "," and prints nothing when there are none
    return [_read_record(line, header_separator=",")
            for line in done.stdout.splitlines() if line]


def _lines(records: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{key}\t{value}\n" for key, value in records)


def _read_record(line: str, header_separator: str = ";") -> ReadRecord:
    partition, key, value, headers = (line.split("\t") + [""])[:4]
    pairs = [item.partition("=") for item in headers.split(header_separator) if item]
    return ReadRecord(int(partition), key, value, {name: text for name, _, text in pairs})
