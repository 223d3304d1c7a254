"""aiohttp's own refusals (404, 405, 413, ...) as the JSON errors our APIs answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from streams.web.access import ErrorBody, Handler

__all__ = ["http_errors_as_json"]


def http_errors_as_json(error: ErrorBody) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware answering aiohttp's 4xx/5xx exceptions with `error(status, reason)`."""

    @web.middleware
    async def as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error(exc.status, exc.reason)
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response

    return as_json
