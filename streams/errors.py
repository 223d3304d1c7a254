"""The platform's exceptions: one base, a family per concern.

Messages say what happened, where (topic/partition/offset, setting name) and what to do.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every error the platform raises on purpose."""


class SettingsError(StreamsError):
    """A setting has a bad value; the message names the variable and what is allowed."""


class KafkaLauncherError(StreamsError):
    """The local Kafka broker could not be resolved, formatted or started."""


class BrokerUnreachableError(StreamsError):
    """No Kafka broker answered at the configured bootstrap servers."""


class DecodeError(StreamsError):
    """A record's key or value could not be decoded into the declared type."""


class TableError(StreamsError):
    """A table was used wrongly (not bound to an app, written outside a batch)."""
