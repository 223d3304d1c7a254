"""The platform's exceptions: one base, a family per concern.

Messages say what happened, where (topic/partition/offset, setting name) and what to do.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every error the platform raises on purpose."""


class SettingsError(StreamsError):
    """A setting has a bad value; the message names the variable and what is allowed."""


class UnverifiedDependencyError(StreamsError):
    """faust-streaming, mode-streaming or aiokafka is at a version the Faust boundary
    (streams/_faust) was not verified with."""


class KafkaLauncherError(StreamsError):
    """The local Kafka broker could not be resolved, formatted or started."""


class DeploymentError(StreamsError):
    """A deployment module (from DEPLOYMENT_MODULES or an installed entry point) does not
    import; the message names it and where it came from."""


class BrokerUnreachableError(StreamsError):
    """No Kafka broker answered at the configured bootstrap servers."""


class TopicMismatchError(StreamsError):
    """An existing topic has a different partition count than the app needs."""


class PositionUnknownError(StreamsError):
    """The broker did not say where a source partition stands."""


class DecodeError(StreamsError):
    """A record's key or value could not be decoded into the declared type."""


class RetryableError(StreamsError):
    """Raised by a handler when the failure is not the records' fault (a database or
    service is down): the batch is retried with backoff while its partitions wait, and
    nothing of it is dead-lettered.

    Example::

        try:
            await db.write(rows)
        except asyncpg.CannotConnectNowError as exc:
            raise RetryableError("orders database unreachable") from exc
    """


class TransientWaitEnded(StreamsError):
    """A batch stopped waiting on a transient failure without being handled."""


class TransientDeadlineError(TransientWaitEnded):
    """The handler kept failing transiently past TRANSIENT_RETRY_DEADLINE_S."""


class BatchAbandoned(TransientWaitEnded):
    """The batch's partitions are being given up while it waited; it is not acknowledged."""


class HandlerFailedError(StreamsError):
    """A record kept failing and there is no dead-letter topic: the agent must stop."""


class TransactionFailedError(StreamsError):
    """A batch part's transaction could not be committed: the worker must stop unacked."""


class TableError(StreamsError):
    """A table was used wrongly (not bound to an app, written outside a batch)."""


class KeyPlacementError(TableError):
    """A record's key is not on the partition the table's key partitioner gives it.

    `matches` names the hashes (`murmur2`, `crc32`, `fnv1a`) that do put the key on the
    record's partition: most likely the one its producer used.
    """

    def __init__(self, message: str, *, topic: str, partitioner: str,
                 matches: tuple[str, ...]) -> None:
        super().__init__(message)
        self.topic = topic
        self.partitioner = partitioner
        self.matches = matches


class PublishError(StreamsError):
    """A record could not be published to Kafka.

    `topic`, `cause` (the last error, as text), `error_type` (its class name), `attempts`
    made and whether the cause was `retriable` (a retriable cause means the attempts or the
    deadline ran out; trying again later may succeed).
    """

    def __init__(
        self, topic: str, cause: BaseException | str, attempts: int, *, retriable: bool
    ) -> None:
        self.topic = topic
        self.cause = str(cause) or type(cause).__name__
        self.error_type = (
            type(cause).__name__ if isinstance(cause, BaseException) else type(self).__name__
        )
        self.attempts = attempts
        self.retriable = retriable
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if retriable:
            hint = "check that the brokers are up, or raise PUBLISH_MAX_ATTEMPTS/PUBLISH_DEADLINE_S"
        else:
            hint = "the error is not retriable: fix the record, topic or permissions"
        super().__init__(
            f"publishing to topic {topic!r} failed after {tries}: "
            f"{self.error_type}: {self.cause} ({hint})"
        )


class UnknownTopicError(PublishError):
    """The topic does not exist and topic auto-creation is off."""


class ReplayBusyError(StreamsError):
    """Another replay of the same topic's dead letters is running (here or in another
    process)."""
