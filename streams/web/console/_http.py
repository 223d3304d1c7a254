"""What every console endpoint shares: JSON errors, query parsing and the Kafka clients.

Handlers are plain aiohttp handlers on the worker's web server. They raise `ApiError` for
input they refuse; `api` turns it (and Kafka errors) into `{"error": ..., "status": ...}`,
the same shape as the table views in `streams.web.probes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from yarl import URL

from streams import strict_json
from streams.kafka.client_options import client_options
from streams.kafka.publisher import Publisher, topic_name_problem
from streams.settings import Settings
from streams.web.access import AccessPolicy

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONSOLE = web.AppKey("streams_console", object)


class ApiError(Exception):
    """A request the console refuses, with the HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


def api(handler: Handler) -> Handler:
    """Answer `ApiError` and Kafka failures as JSON errors instead of HTML 500 pages."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except (KafkaConnectionError, KafkaTimeoutError, TimeoutError) as exc:
            return error_response(503, f"Kafka did not answer: {type(exc).__name__}: {exc}")
        except KafkaError as exc:
            return error_response(502, f"Kafka refused: {type(exc).__name__}: {exc}")

    return wrapped


#: Kafka's offsets, timestamps and counts are signed 64-bit integers.
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def int_param(request: web.Request, name: str, default: int | None, *, low: int = 0,
              high: int = INT64_MAX) -> int | None:
    """An integer query parameter within [low, high]; 400 with a message otherwise."""
    raw = request.query.get(name, "").strip()
    if raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise ApiError(400, f"{name}={raw[:40]!r} is not an integer")
    value = int(raw)
    if value < low:
        raise ApiError(400, f"{name}={value} is below the minimum {low}")
    if value > high:
        raise ApiError(400, f"{name}={value} is over the cap {high}")
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or 400 saying why not (see `streams.strict_json`)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "the body is larger than this server accepts") from None
    try:
        body = strict_json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def checked_topic_name(name: str) -> str:
    problem = topic_name_problem(name)
    if problem is not None:
        raise ApiError(400, f"invalid topic name: {problem}")
    return name


class Console:
    """Per-worker console state: settings, a shared admin client, the app it serves."""

    def __init__(self, app: Any, settings: Settings, access: AccessPolicy) -> None:
        self.app = app
        self.settings = settings
        self.access = access
        self.stopping = asyncio.Event()
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._lock: asyncio.Lock | None = None
        self._publisher: Publisher | None = None
        self.live: Any = None  # the LiveSampler, made on the first /api/live request

    @property
    def group_id(self) -> str:
        """The worker's consumer group (Faust names it after the app id)."""
        return str(self.settings.app_id)

    def client_options(self) -> dict[str, Any]:
        """Brokers, TLS and SASL options for the console's own Kafka clients."""
        return client_options(self.settings)

    def peer_headers(self, peer_url: str) -> dict[str, str]:
        """Headers for a request to another worker of the group.

        The workers share one token. It goes only to a peer whose host this worker answers
        to itself (API_ALLOWED_HOSTS): a peer's URL is whatever that group member claims.
        """
        token = self.access.token
        if token is None or not self.access.host_allowed(URL(peer_url).raw_authority):
            return {}
        return {"Authorization": f"Bearer {token}"}

    async def admin(self) -> AIOKafkaAdminClient:
        """The shared admin client, connected on first use."""
        async with self._once():
            if self._admin is None:
                admin = AIOKafkaAdminClient(request_timeout_ms=15_000, **self.client_options())
                await admin.start()
                self._admin = admin
        return self._admin

    async def offsets(self) -> AIOKafkaConsumer:
        """A shared group-less consumer for offset look-ups (start, end, by time)."""
        async with self._once():
            if self._offsets is None:
                consumer = AIOKafkaConsumer(enable_auto_commit=False,
                                            request_timeout_ms=15_000, **self.client_options())
                await consumer.start()
                self._offsets = consumer
        return self._offsets

    async def publisher(self) -> Publisher:
        """The platform's `Publisher` (acks=all, idempotent) for records sent from the UI."""
        async with self._once():
            if self._publisher is None:
                publisher = Publisher(self.settings, client_id="streams-console")
                await publisher.start()
                self._publisher = publisher
        return self._publisher

    def _once(self) -> asyncio.Lock:
        if self._lock is None:  # created on the event loop that serves requests
            self._lock = asyncio.Lock()
        return self._lock

    @contextlib.asynccontextmanager
    async def consumer(self, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
        """A short-lived consumer without a group (browsing never commits)."""
        consumer = AIOKafkaConsumer(enable_auto_commit=False, request_timeout_ms=15_000,
                                    **{**self.client_options(), **options})
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    async def close(self) -> None:
        self.stopping.set()
        if self.live is not None:
            await self.live.stop()
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()
        offsets, self._offsets = self._offsets, None
        if offsets is not None:
            await offsets.stop()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.close()


def console_of(request: web.Request) -> Console:
    return cast(Console, request.app[CONSOLE])
