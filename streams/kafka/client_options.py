"""The one place that turns settings into Kafka client options: brokers, TLS and SASL.

The Faust app gets `faust_credentials(settings)` as its `broker_credentials`; every other
client (publisher, admin, console, dead-letter replay, monitoring, tests) gets
`client_options(settings)`, which is what Faust's own aiokafka driver derives from those
same credentials, so the worker's consumer and our side clients always connect alike.

    >>> producer = AIOKafkaProducer(**client_options(settings), acks="all")
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import CredentialsT

from streams.errors import SettingsError
from streams.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for `SSL`/`SASL_SSL`, None for the plain-text protocols.

    Raises `SettingsError` (one line) when a certificate or key file cannot be used.
    """
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = str(settings.ssl_cafile) if settings.ssl_cafile else None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"KAFKA_SSL_CAFILE={cafile!r} cannot be used: {_reason(exc)}"
                            ) from None
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_certfile is not None:
        try:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
                password=str(settings.ssl_key_password) if settings.ssl_key_password else None)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                f"KAFKA_SSL_CERTFILE={str(settings.ssl_certfile)!r} / KAFKA_SSL_KEYFILE="
                f"{str(settings.ssl_keyfile) if settings.ssl_keyfile else None!r} cannot be "
                f"used: {_reason(exc)}") from None
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The Faust app's `broker_credentials` (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=str(settings.sasl_password),
        mechanism=settings.sasl_mechanism,
        ssl_context=context,
    )


def client_options(cluster: Settings | str, **extra: Any) -> dict[str, Any]:
    """aiokafka options (producer, consumer, admin, client) for the configured cluster.

    `cluster` is the settings, or just bootstrap servers for a PLAINTEXT cluster (tests,
    the local broker). `extra` (client_id, request_timeout_ms, ...) is added on top.
    """
    settings = Settings(bootstrap_servers=cluster) if isinstance(cluster, str) else cluster
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        **credentials_to_aiokafka_auth(faust_credentials(settings)),
        **extra,
    }


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
