"""The access checks in front of every HTTP route: token, Host, Origin, content type."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streams.errors import SettingsError
from streams.settings import Settings
from streams.web.access import AccessPolicy, access_middleware, host_name

TOKEN = "s3cret-token-0123456789"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "method": request.method})


def _app(policy: AccessPolicy, changed: list[str]) -> web.Application:
    async def change(request: web.Request) -> web.Response:
        changed.append(request.path)
        return web.json_response({"changed": True}, status=201)

    app = web.Application(middlewares=[access_middleware(policy, _error)])
    app.router.add_get("/", _ok)
    app.router.add_get("/health", _ok)
    app.router.add_get("/api/topics", _ok)
    app.router.add_post("/api/topics", change)
    return app


@pytest.fixture
def changed() -> list[str]:
    return []


@pytest.fixture
async def client(changed: list[str]) -> AsyncIterator[TestClient]:
    policy = AccessPolicy(token=TOKEN)
    async with TestClient(TestServer(_app(policy, changed), host="127.0.0.1")) as client:
        yield client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_write_without_the_token_is_401_and_changes_nothing(
        client: TestClient, changed: list[str]) -> None:
    response = await client.post("/api/topics", json={"name": "t"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in (await response.json())["error"]
    wrong = await client.post("/api/topics", json={"name": "t"}, headers=bearer("nope"))
    assert wrong.status == 401
    basic = await client.post("/api/topics", json={}, headers={"Authorization": TOKEN})
    assert basic.status == 401
    assert changed == []


async def test_a_write_with_the_token_goes_through(client: TestClient,
                                                    changed: list[str]) -> None:
    response = await client.post("/api/topics", json={"name": "t"}, headers=bearer())
    assert response.status == 201
    assert changed == ["/api/topics"]


async def test_reads_are_open_unless_reads_need_the_token(changed: list[str]) -> None:
    async with TestClient(TestServer(_app(AccessPolicy(token=TOKEN), changed))) as client:
        assert (await client.get("/api/topics")).status == 200
    policy = AccessPolicy(token=TOKEN, token_for_reads=True)
    async with TestClient(TestServer(_app(policy, changed))) as client:
        assert (await client.get("/api/topics")).status == 401
        assert (await client.get("/api/topics", headers=bearer())).status == 200
        assert (await client.get("/health")).status == 200  # probes stay open
        assert (await client.get("/")).status == 200  # the page that asks for the token


async def test_a_text_plain_write_is_415_even_with_the_token(
        client: TestClient, changed: list[str]) -> None:
    response = await client.post("/api/topics", data='{"name": "t"}',
                                 headers={**bearer(), "Content-Type": "text/plain"})
    assert response.status == 415
    form = await client.post("/api/topics", data={"name": "t"}, headers=bearer())
    assert form.status == 415
    assert changed == []


async def test_a_foreign_origin_is_refused_the_served_origin_is_not(
        client: TestClient, changed: list[str]) -> None:
    evil = await client.post("/api/topics", json={"name": "t"},
                             headers={**bearer(), "Origin": "http://evil.example"})
    assert evil.status == 403
    assert "cross-origin" in (await evil.json())["error"]
    null = await client.post("/api/topics", json={}, headers={**bearer(), "Origin": "null"})
    assert null.status == 403
    served = f"http://127.0.0.1:{client.port}"
    same = await client.post("/api/topics", json={"name": "t"},
                             headers={**bearer(), "Origin": served})
    assert same.status == 201
    assert changed == ["/api/topics"]


async def test_an_unknown_host_header_is_refused(client: TestClient) -> None:
    rebound = await client.get("/api/topics", headers={"Host": f"evil.example:{client.port}"})
    assert rebound.status == 403
    assert "API_ALLOWED_HOSTS" in (await rebound.json())["error"]
    for host in ("localhost", f"127.0.0.1:{client.port}", f"[::1]:{client.port}"):
        assert (await client.get("/api/topics", headers={"Host": host})).status == 200


async def test_cross_site_create_without_any_token_configured_is_refused(
        changed: list[str]) -> None:
    """The attack of a page in the user's browser: text/plain with a foreign Origin."""
    async with TestClient(TestServer(_app(AccessPolicy(), changed))) as client:
        response = await client.post("/api/topics", data='{"name": "t"}', headers={
            "Content-Type": "text/plain", "Origin": "http://evil.example"})
        assert response.status == 403
        assert changed == []


async def test_the_token_is_never_logged(client: TestClient,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/api/topics", json={}, headers=bearer("wrong-" + TOKEN))
    await client.post("/api/topics", json={}, headers=bearer())
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(("header", "name"), [
    ("localhost:8881", "localhost"), ("[::1]:80", "::1"), ("Worker-1", "worker-1"),
    ("", None), (None, None), ("evil.example:1", "evil.example"),
])
def test_host_name(header: str | None, name: str | None) -> None:
    assert host_name(header) == name


# --- settings ---------------------------------------------------------------------------


def test_a_non_loopback_bind_without_a_token_refuses_to_start() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"WEB_HOST": "0.0.0.0"})
    message = str(refused.value)
    assert "WEB_HOST='0.0.0.0'" in message and "API_TOKEN" in message
    assert "\n" not in message
    with pytest.raises(SettingsError, match="PRODUCER_HOST"):
        Settings.from_env({"PRODUCER_HOST": "10.0.0.5"})
    assert Settings.from_env({"WEB_HOST": "0.0.0.0", "API_ALLOW_NO_TOKEN": "1"}).api_token is None
    assert Settings.from_env({"WEB_HOST": "0.0.0.0", "API_TOKEN": TOKEN}).api_token == TOKEN
    assert Settings.from_env({"WEB_HOST": "::1"}).api_token is None


def test_the_token_comes_from_a_file(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    settings = Settings.from_env({"API_TOKEN_FILE": str(path), "WEB_HOST": "0.0.0.0"})
    assert settings.api_token == TOKEN
    assert TOKEN not in repr(settings)
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings.from_env({"API_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        Settings.from_env({"API_TOKEN_FILE": str(tmp_path / "empty")})
    with pytest.raises(SettingsError, match="both set"):
        Settings.from_env({"API_TOKEN_FILE": str(path), "API_TOKEN": TOKEN})


def test_console_mode_and_allowed_hosts_are_validated() -> None:
    assert Settings.from_env({}).console_mode == "read-write"
    assert Settings.from_env({"CONSOLE_MODE": "Read-Only"}).console_mode == "read-only"
    with pytest.raises(SettingsError, match="CONSOLE_MODE='rw'"):
        Settings.from_env({"CONSOLE_MODE": "rw"})
    with pytest.raises(SettingsError, match="API_TOKEN_READS"):
        Settings.from_env({"API_TOKEN_READS": "maybe"})
    settings = Settings.from_env({"API_ALLOWED_HOSTS": "Worker-1, [::1],*"})
    assert settings.api_allowed_hosts == ("worker-1", "::1", "*")


def test_the_default_allowed_hosts_are_loopback_plus_the_bind_and_advertised_hosts() -> None:
    settings = Settings.from_env({"WEB_HOST": "0.0.0.0", "WEB_ADVERTISED_HOST": "worker-1",
                                  "API_TOKEN": TOKEN})
    policy = AccessPolicy.from_settings(settings, settings.web_host)
    assert policy.allowed_hosts == {"localhost", "127.0.0.1", "::1", "worker-1"}
    assert policy.token == TOKEN and policy.token_needed_for == "writes"
    assert not policy.host_allowed("evil.example")
    settings = Settings.from_env({"WEB_HOST": "192.168.1.4", "API_TOKEN": TOKEN,
                                  "API_TOKEN_READS": "yes"})
    policy = AccessPolicy.from_settings(settings, settings.web_host)
    assert policy.host_allowed("192.168.1.4:8881")
    assert policy.token_needed_for == "all"


@pytest.mark.parametrize(("value", "kept"), [
    ("http://worker-1:8881", True), ("https://w.example/", True),
    ("javascript:alert(1)", False), ("data:text/html,<b>x</b>", False), ("//evil", False),
    (42, False), (None, False), ("http://", False),
])
def test_group_member_links_are_http_urls_only(value: object, kept: bool) -> None:
    from streams.web.console.groups import web_url

    assert web_url(value) == (value if kept else None)
