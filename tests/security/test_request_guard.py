"""Every route, every method: the Host/Origin checks, JSON-only changes, the API token and the
security headers, with and without a token. Routes are read from the app, so new ones are covered."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

import weavegraph as wg
from weavegraph.cli import main
from weavegraph.web._guard import HostPolicy

TOKEN = "s3cret-ünïcode"
REFUSALS = (401, 403, 415, 421)


def _code(method: str, response: Any) -> str | None:
    """The JSON error code (a HEAD answer has no body)."""
    return None if method == "HEAD" else response.json()["code"]


def _api(requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(method, path) for method, path in requests if path.startswith("/api/")]


def _changes(requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in requests if m not in ("GET", "HEAD", "OPTIONS")]


async def test_the_routes_are_enumerated(app_client: Any) -> None:
    async with app_client() as app:
        assert ("POST", "/api/runs") in app.requests
        assert ("GET", "/api/sessions/nobody") in app.requests
        assert ("GET", "/api/runs/nobody/events") in app.requests
        assert ("GET", "/") in app.requests


@pytest.mark.parametrize("token", ["", TOKEN])
async def test_every_route_answers_a_well_formed_request(app_client: Any, token: str) -> None:
    async with app_client(token=token) as app:
        auth = {"Authorization": b"Bearer " + TOKEN.encode()} if token else {}
        for method, path in app.requests:
            response = await app.send(method, path, auth)
            assert response.status_code not in REFUSALS, (method, path, response.text)
            assert response.status_code < 500, (method, path, response.text)


async def test_without_the_token_every_api_route_is_401(app_client: Any) -> None:
    wrong = [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic " + TOKEN.encode().hex()},
        {"Authorization": b"Bearer " + TOKEN.encode("utf-8")[:-1]},
        # The same text in another encoding is another token (it used to be the only one accepted).
        {"Authorization": b"Bearer " + TOKEN.encode("latin-1")},
        {"Authorization": b"Bearer " + TOKEN.encode("utf-8") + b"x"},
    ]
    async with app_client(token=TOKEN) as app:
        assert _api(app.requests)
        for method, path in _api(app.requests):
            for headers in wrong:
                response = await app.send(method, path, headers)
                assert response.status_code == 401, (method, path, headers)
                assert _code(method, response) in ("weavegraph::web::unauthorized", None)
                assert response.headers["www-authenticate"] == "Bearer"


async def test_the_token_is_compared_as_utf8_bytes(app_client: Any) -> None:
    async with app_client(token=TOKEN) as app:
        utf8 = {"Authorization": b"Bearer " + TOKEN.encode("utf-8")}
        assert (await app.send("GET", "/api/sessions", utf8)).status_code == 200
        lower = {"Authorization": b"bearer " + TOKEN.encode("utf-8")}
        assert (await app.send("GET", "/api/sessions", lower)).status_code == 200


async def test_pages_and_health_need_no_token(app_client: Any) -> None:
    async with app_client(token=TOKEN) as app:
        others = [(m, p) for m, p in app.requests if not p.startswith("/api/")]
        assert others
        for method, path in others:
            assert (await app.send(method, path)).status_code not in REFUSALS, (method, path)


async def test_the_query_token_works_on_the_events_route_only(app_client: Any) -> None:
    query = "?token=" + quote(TOKEN)
    async with app_client(token=TOKEN) as app:
        for method, path in _api(app.requests):
            response = await app.send(method, path + query)
            if path.endswith("/events"):
                assert response.status_code == 404, (method, path)  # authorized: no such session
            else:
                assert response.status_code == 401, (method, path)
        latin1 = "/api/runs/nobody/events?token=" + quote(TOKEN.encode("latin-1"))
        assert (await app.send("GET", latin1)).status_code == 401


@pytest.mark.parametrize("token", ["", TOKEN])
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-seq",
        "",
    ],
)
async def test_changes_need_a_json_content_type(
    app_client: Any, token: str, content_type: str | None
) -> None:
    async with app_client(token=token) as app:
        auth = {"Authorization": b"Bearer " + TOKEN.encode()} if token else {}
        assert _changes(app.requests)
        for method, path in _changes(app.requests):
            headers = {
                **auth,
                **({"Content-Type": content_type} if content_type is not None else {}),
            }
            response = await app.client.request(
                method, path, headers=headers, content=b'{"input": "x"}'
            )
            assert response.status_code == 415, (method, path, content_type)
            assert response.json()["code"] == "weavegraph::web::unsupported_media_type"
        # Nothing was started.
        assert (await app.client.get("/api/sessions", headers=auth)).json() == {"sessions": []}


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_content_types_are_accepted(app_client: Any, content_type: str) -> None:
    async with app_client() as app:
        response = await app.client.post(
            "/api/runs", headers={"Content-Type": content_type}, content=b'{"input": "x"}'
        )
        assert response.status_code == 202


@pytest.mark.parametrize("token", ["", TOKEN])
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:80",
        "testserver.evil.example",
        "127.0.0.1.evil.example",
        "localhost:8001",
        "testserver:8080",
        "",
        "[::1",
        "bad host",
    ],
)
async def test_a_foreign_host_is_refused_everywhere(app_client: Any, token: str, host: str) -> None:
    async with app_client(token=token) as app:
        auth = {"Authorization": b"Bearer " + TOKEN.encode()} if token else {}
        for method, path in app.requests:
            response = await app.send(method, path, {**auth, "Host": host})
            assert response.status_code == 421, (method, path, host)
            assert _code(method, response) in ("weavegraph::web::host_not_allowed", None)


@pytest.mark.parametrize(
    "host", ["testserver", "TestServer:80", "localhost", "127.0.0.1:80", "[::1]:80", "localhost."]
)
async def test_the_server_and_loopback_names_are_accepted(app_client: Any, host: str) -> None:
    async with app_client() as app:
        assert (await app.send("GET", "/api/sessions", {"Host": host})).status_code == 200


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        ("app.example.com", "app.example.com", 200),
        ("app.example.com", "app.example.com:8443", 200),  # no port given: any port
        ("app.example.com:8443", "app.example.com:8443", 200),
        ("app.example.com:8443", "app.example.com", 421),
        ("app.example.com, other.example", "other.example", 200),
        ("app.example.com", "evil.example", 421),
        ("[::1]:9000", "[::1]:9000", 200),
        ("*", "anything.example:1234", 200),
    ],
)
async def test_allowed_hosts(app_client: Any, allowed: str, host: str, status: int) -> None:
    async with app_client(allowed_hosts=allowed) as app:
        assert (await app.send("GET", "/api/sessions", {"Host": host})).status_code == status


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "https://testserver",  # another scheme is another origin (port 443)
        "http://localhost:8001",
        "null",
        "file://",
        "http://testserver/path",
        "garbage",
    ],
)
async def test_a_foreign_origin_is_refused_everywhere(app_client: Any, origin: str) -> None:
    async with app_client() as app:
        for method, path in app.requests:
            response = await app.send(method, path, {"Origin": origin})
            assert response.status_code == 403, (method, path, origin)
            assert _code(method, response) in ("weavegraph::web::origin_not_allowed", None)


@pytest.mark.parametrize("origin", ["http://testserver", "http://localhost", "http://127.0.0.1:80"])
async def test_the_own_origin_is_accepted(app_client: Any, origin: str) -> None:
    async with app_client() as app:
        for method, path in app.requests:
            response = await app.send(method, path, {"Origin": origin})
            assert response.status_code not in REFUSALS, (method, path)


async def test_an_allowed_origin_behind_a_proxy(app_client: Any) -> None:
    async with app_client(allowed_hosts="app.example.com") as app:
        headers = {"Host": "app.example.com", "Origin": "https://app.example.com"}
        assert (
            await app.send("POST", "/api/runs", headers)
        ).status_code == 400  # reached the handler


async def test_every_response_carries_the_security_headers(app_client: Any) -> None:
    async with app_client(token=TOKEN) as app:
        responses = [await app.send(method, path) for method, path in app.requests]
        responses.append(await app.send("GET", "/", {"Host": "evil.example"}))
        for response in responses:
            csp = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert "default-src 'none'" in csp
            script_src = next(part for part in csp.split(";") if "script-src" in part)
            assert "'unsafe-inline'" not in script_src
            assert "'unsafe-eval'" not in script_src
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("entry", ["x:99999", "x:port", "[::1", "http://x", "a/b", "x:"])
def test_bad_allowed_hosts_are_config_errors(entry: str) -> None:
    with pytest.raises(wg.ConfigError, match="invalid allowed host"):
        HostPolicy.parse(entry)


def test_serve_refuses_bad_allowed_hosts_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "weavegraph.demo:demo_app", "--allowed-hosts", "x:99999", "--port", "0"]
    assert main(argv) == 2
    assert "invalid allowed host 'x:99999'" in capsys.readouterr().err


def test_an_empty_allow_list_allows_nothing_extra() -> None:
    assert HostPolicy.parse("") == HostPolicy.parse(None) == HostPolicy()
    assert not HostPolicy().allows("evil.example", 80, ("127.0.0.1", 80))
    assert HostPolicy().allows("localhost", 80, None)  # no server address given: loopback only
    assert not HostPolicy().allows("evil.example", 80, None)
