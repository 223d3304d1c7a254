"""OpenAPI 3 descriptions of the two HTTP services, served at `GET /openapi.json`.

Written by hand from the routes (each screen module's docstring says the same in prose);
`tests/integration/test_http_fuzz.py` generates requests from them, so a route missing here
is a route nobody fuzzes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["producer_openapi", "serve_openapi", "worker_openapi"]

Schema = dict[str, Any]

_STRING: Schema = {"type": "string"}
_INTEGER: Schema = {"type": "integer"}
_ANY: Schema = {}
_ERROR: Schema = {"description": "bad input: a JSON body that says what is wrong"}


def _param(name: str, where: str = "query", schema: Schema = _STRING,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return _param(name, "path")


def _op(summary: str, *params: dict[str, Any], body: Schema | None = None,
        writes: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": list(params),
        "responses": {"200": {"description": "success"}, "4XX": _ERROR},
    }
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    if writes:
        operation["security"] = [{"bearer": []}]
    return operation


def _enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def _object(**properties: Schema) -> Schema:
    return {"type": "object", "properties": properties}


def _document(title: str, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


_HEADERS: Schema = {"type": "object", "additionalProperties": _STRING}
_RECORD = _object(key=_ANY, value=_ANY, headers=_HEADERS, partition=_INTEGER)


def worker_openapi(console_mode: str) -> dict[str, Any]:
    """The worker web (port 8881); the console's routes as far as `console_mode` mounts them."""
    paths: dict[str, dict[str, Any]] = {
        "/health": {"get": _op("the process and its event loop answer")},
        "/ready": {"get": _op("partitions assigned, tables recovered (503 and why if not)")},
        "/metrics": {"get": _op("Prometheus text format")},
        "/openapi.json": {"get": _op("this description")},
        "/api/agents": {"get": _op("per agent: consumed to the end offsets last read (lag 0)")},
        "/api/assignment": {"get": _op("the partitions this worker owns, its rebalances")},
        "/api/tables": {"get": _op("the app's tables")},
        "/api/tables/{table}/{key}": {"get": _op(
            "one key's value, answered by the worker that owns it", _path("table"),
            _path("key"))},
    }
    if console_mode == "off":
        return _document("streams worker", paths)
    writes = console_mode == "read-write"
    console: dict[str, dict[str, Any]] = {
        "/": {"get": _op("the dashboard page")},
        "/api/console": {"get": _op("console mode and what needs the token")},
        "/api/cluster": {"get": _op("brokers, controller, topic and partition counts")},
        "/api/topics": {
            "get": _op("every topic", _param("internal", schema={"type": "boolean"})),
            "post": _op("create a topic", body=_object(
                name=_STRING, partitions=_INTEGER, replication=_INTEGER,
                config={"type": "object", "additionalProperties": _STRING}), writes=True),
        },
        "/api/topics/{topic}": {"get": _op("a topic's partitions", _path("topic"))},
        "/api/topics/{topic}/partitions": {"post": _op(
            "raise the partition count", _path("topic"), body=_object(count=_INTEGER),
            writes=True)},
        "/api/topics/{topic}/messages": {
            "get": _op(
                "browse and search", _path("topic"), _param("partition", schema=_INTEGER),
                _param("from", schema=_enum("newest", "oldest", "offset", "timestamp")),
                _param("offset", schema=_INTEGER), _param("timestamp"), _param("positions"),
                _param("key"), _param("text"), _param("header"), _param("filter"),
                _param("limit", schema=_INTEGER), _param("max_scan", schema=_INTEGER),
                _param("format", schema=_enum("json", "jsonl"))),
            "post": _op("publish one record", _path("topic"), body=_RECORD, writes=True),
        },
        "/api/groups": {"get": _op("consumer groups")},
        "/api/groups/{group}": {"get": _op("members, offsets and lag", _path("group"))},
        "/api/groups/{group}/reset": {"post": _op(
            "reset an empty group's offsets", _path("group"),
            body=_object(to=_enum("earliest", "latest", "timestamp"),
                         timestamp=_ANY, topic=_STRING), writes=True)},
        "/api/tables/{table}": {"get": _op(
            "browse a table", _path("table"), _param("prefix"), _param("after"),
            _param("limit", schema=_INTEGER), _param("scope", schema=_enum("all", "local")))},
        "/api/dlq": {"get": _op("topics with dead letters")},
        "/api/dlq/{topic}": {"get": _op(
            "a topic's dead letters", _path("topic"), _param("limit", schema=_INTEGER),
            _param("max_scan", schema=_INTEGER), _param("positions"))},
        "/api/dlq/{topic}/replay": {"post": _op(
            "replay dead letters", _path("topic"), body=_object(
                all={"type": "boolean"},
                offsets={"type": "array", "items": {"type": "array", "items": _INTEGER}}),
            writes=True)},
        "/api/live/samples": {"get": _op("recent live samples")},
        "/api/live": {"get": {**_op("live samples as Server-Sent Events"),
                              "x-streaming": True}},
    }
    for path, operations in console.items():
        kept = {m: op for m, op in operations.items() if writes or m == "get"}
        if kept:
            paths[path] = kept
    return _document("streams worker", paths)


def producer_openapi() -> dict[str, Any]:
    """The producer service (port 8888)."""
    return _document("streams producer service", {
        "/topics/{topic}": {"post": _op(
            "publish records (Confluent REST Proxy v2 JSON)", _path("topic"),
            body=_object(records={"type": "array", "items": _RECORD}), writes=True)},
        "/topics": {"get": _op("topics and their partition counts")},
        "/metrics": {"get": _op("Prometheus text format")},
        "/health": {"get": _op("the process answers")},
        "/": {"get": _op("the produce page")},
        "/openapi.json": {"get": _op("this description")},
    })


def serve_openapi(router: web.UrlDispatcher, document: dict[str, Any]) -> None:
    """Answer `GET /openapi.json` with `document`."""

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    router.add_get("/openapi.json", openapi)
