"""Who may call the HTTP services, and from where: one aiohttp middleware for every surface.

Every request is checked in this order, and refused with a 4xx before any handler runs:

1. `Host` must be an allowed host (`API_ALLOWED_HOSTS`), so a page on a DNS-rebound name
   cannot read the API through the user's browser.
2. State-changing requests (anything but GET, HEAD, OPTIONS) from a browser must come from
   the served origin: an `Origin` header naming another host:port is refused.
3. With `API_TOKEN` set, state-changing requests (and reads with `API_TOKEN_READS`) need
   `Authorization: Bearer <token>`, compared in constant time.
4. State-changing requests must send a JSON content type: a cross-site form or a
   `text/plain` "simple request" never reaches a handler.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from streams.settings import Settings

__all__ = ["WORKER_OPEN_PATHS", "AccessPolicy", "ErrorBody", "access_middleware", "protect"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Builds a service's JSON error response from (status, message).
ErrorBody = Callable[[int, str], web.Response]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_TYPES = frozenset({"application/json"})
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
#: What anyone may GET from a worker even when reads need the token.
WORKER_OPEN_PATHS = ("/", "/health", "/ready", "/api/console")


@dataclass(frozen=True)
class AccessPolicy:
    """What one HTTP service demands of its requests."""

    token: str | None = None
    token_for_reads: bool = False
    allowed_hosts: frozenset[str] = frozenset(LOCAL_HOSTS)
    json_types: frozenset[str] = JSON_TYPES
    #: Paths any caller may GET even when reads need the token: probes and the page itself
    #: (which then asks for the token).
    open_paths: frozenset[str] = frozenset({"/", "/health", "/ready"})
    open_prefixes: tuple[str, ...] = ("/static/",)

    @classmethod
    def from_settings(cls, settings: Settings, bind_host: str, *,
                      json_types: Iterable[str] = JSON_TYPES,
                      open_paths: Iterable[str] = ("/", "/health", "/ready")) -> AccessPolicy:
        """The policy of a service bound to `bind_host`, from the API_* settings."""
        if settings.api_allowed_hosts is not None:
            hosts = frozenset(settings.api_allowed_hosts)
        else:
            extra = {bind_host, settings.web_advertised_host or ""} - WILDCARD_BINDS
            hosts = frozenset({*LOCAL_HOSTS, *(h.lower().strip("[]") for h in extra)})
        return cls(token=str(settings.api_token) if settings.api_token else None,
                   token_for_reads=settings.api_token_reads, allowed_hosts=hosts,
                   json_types=frozenset(json_types), open_paths=frozenset(open_paths))

    @property
    def token_needed_for(self) -> str:
        """`none`, `writes` or `all`: what the dashboard tells the person."""
        if self.token is None:
            return "none"
        return "all" if self.token_for_reads else "writes"

    def host_allowed(self, host_header: str | None) -> bool:
        if "*" in self.allowed_hosts:
            return True
        name = host_name(host_header)
        return name is not None and name in self.allowed_hosts

    def token_matches(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())

    def is_open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)


def host_name(host_header: str | None) -> str | None:
    """The lower-case host of a `Host` header (port and IPv6 brackets removed)."""
    if not host_header:
        return None
    try:
        host = URL(f"http://{host_header}").raw_host
    except ValueError:
        return None
    return host.lower().strip("[]") if host else None


def _netloc(origin: str) -> str | None:
    try:
        url = URL(origin)
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.raw_host:
        return None
    return url.raw_authority.lower()


def _problem(policy: AccessPolicy, request: web.Request) -> tuple[int, str] | None:
    """Why `request` is refused (status, message), or None to let it through."""
    host = request.headers.get("Host")
    if not policy.host_allowed(host):
        return 403, (f"Host {host!r} is not served here; allowed: "
                     f"{', '.join(sorted(policy.allowed_hosts))} (API_ALLOWED_HOSTS)")
    writes = request.method not in SAFE_METHODS
    if writes:
        origin = request.headers.get("Origin")
        if origin is not None and _netloc(origin) != (host or "").lower():
            return 403, f"cross-origin request refused: Origin {origin!r} is not this service"
    if (writes or (policy.token_for_reads and not policy.is_open(request.path))) and \
            not policy.token_matches(request.headers.get("Authorization")):
        which = "this request needs" if writes else "reads on this service need"
        return 401, f"{which} the API token: send 'Authorization: Bearer <API_TOKEN>'"
    if writes and request.content_type not in policy.json_types:
        return 415, (f"content type {request.content_type!r} is not supported for "
                     f"{request.method}; send {' or '.join(sorted(policy.json_types))}")
    return None


def access_middleware(policy: AccessPolicy, error: ErrorBody) -> Callable[..., Awaitable[
        web.StreamResponse]]:
    """The aiohttp middleware that applies `policy`, answering refusals with `error`."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        problem = _problem(policy, request)
        if problem is not None:
            status, message = problem
            response = error(status, message)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="streams"'
            return response
        return await handler(request)

    return check_access


def protect(web_app: web.Application, policy: AccessPolicy, error: ErrorBody) -> None:
    """Put the access checks in front of every route of `web_app` (before it starts)."""
    web_app.middlewares.insert(0, access_middleware(policy, error))
