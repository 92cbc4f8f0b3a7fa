"""The checks every request passes before a handler sees it, token or not.

- ``Host`` (and ``Origin``, when sent) must name this server: the address the connection came in
  on (for a loopback address also ``localhost``, ``127.0.0.1`` and ``[::1]``), or a name in the
  allowed hosts. A page on another site cannot reach the API through DNS rebinding (421) nor send
  it requests from the visitor's browser (403).
- Requests that change something (any method but GET, HEAD and OPTIONS) must be
  ``Content-Type: application/json`` (415): browsers only send that cross-site after a CORS
  preflight, which this server never grants, so a ``no-cors`` form or text post cannot start,
  answer or cancel a run.
- With an API token, ``/api/*`` needs ``Authorization: Bearer <token>`` (401), compared as bytes
  in constant time; the events route also accepts ``?token=`` (browsers' EventSource cannot send
  headers).
- Every response carries a Content-Security-Policy without inline scripts (unless the page's own,
  by hash), ``X-Frame-Options: DENY`` and ``nosniff``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError

ALLOWED_HOSTS_ENV = "WEAVEGRAPH_ALLOWED_HOSTS"
"""Environment variable (or ``.env`` entry) holding extra allowed host names, comma-separated."""

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE = "application/json"
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_HOST_HELP = "host, host:port, [ipv6]:port or *"
_NAME = re.compile(r"^[a-z0-9_.:-]+$")


def error_response(status: int, message: str, code: str) -> JSONResponse:
    """The one shape of every JSON error the server answers: ``{"error", "code"}``."""
    return JSONResponse({"error": message, "code": code}, status_code=status)


def _split_authority(authority: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (``[v6]:port`` for IPv6) as a lowercase host and port; None if malformed."""
    text = authority.strip().lower()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
        has_port = bool(rest)
    else:
        has_port = text.count(":") == 1
        host, _, port_text = text.partition(":") if has_port else (text, "", "")
    host = host.removesuffix(".")
    if not host or not _NAME.match(host):
        return None
    if not has_port:
        return host, None
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return None
    port = int(port_text)
    return (host, port) if port <= 65535 else None


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Which ``Host``/``Origin`` values name this server (see the module docstring)."""

    allowed: tuple[tuple[str, int | None], ...] = ()
    any_host: bool = False

    @classmethod
    def parse(cls, entries: str | Iterable[str] | None) -> HostPolicy:
        """From ``a,b:8080`` or a list of entries (``*`` allows any host); ConfigError if bad."""
        items = re.split(r"[,\s]+", entries) if isinstance(entries, str) else list(entries or ())
        allowed: list[tuple[str, int | None]] = []
        any_host = False
        for item in (entry.strip() for entry in items):
            if item == "*":
                any_host = True
            elif item:
                parsed = _split_authority(item)
                if parsed is None:
                    raise ConfigError(
                        f"invalid allowed host {item!r}: expected {_HOST_HELP}",
                        help=f"Give --allowed-hosts / {ALLOWED_HOSTS_ENV} as comma-separated "
                        f"{_HOST_HELP}, e.g. app.example.com,10.0.0.5:8000.",
                    )
                allowed.append(parsed)
        return cls(tuple(allowed), any_host)

    def allows(self, authority: str, default_port: int, server: tuple[str, int] | None) -> bool:
        """Whether ``authority`` (``host[:port]``) names this server, reached at ``server``."""
        if self.any_host:
            return True
        parsed = _split_authority(authority)
        if parsed is None:
            return False
        host, given_port = parsed
        port = default_port if given_port is None else given_port
        if any(host == name and want in (None, port) for name, want in self.allowed):
            return True
        if server is None:  # the ASGI server did not say: only the loopback names
            return host in LOOPBACK_NAMES
        server_host, server_port = server[0].lower(), server[1]
        # Loopback names cannot be pointed elsewhere by a DNS answer, so they are always accepted.
        return (host == server_host or host in LOOPBACK_NAMES) and port == server_port


def _server(scope: Scope, default_port: int) -> tuple[str, int] | None:
    """The address the request came in on; a missing port (a Unix socket, a test client) is
    the scheme's default, as in a ``Host`` without one."""
    server = scope.get("server")
    if not server:
        return None
    return str(server[0]), default_port if server[1] is None else int(server[1])


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value
    return None


def _query_token(query: bytes) -> bytes:
    for pair in query.split(b"&"):
        key, sep, value = pair.partition(b"=")
        if sep and unquote_to_bytes(key.replace(b"+", b" ")) == b"token":
            return unquote_to_bytes(value.replace(b"+", b" "))
    return b""


def _content_security_policy(page: Path) -> str:
    """No scripts but the server's own files and, by hash, the page's inline ones."""
    try:
        html = page.read_text(encoding="utf-8")
    except OSError:
        html = ""
    inline = re.findall(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in inline
    )
    script_src = f"'self' {hashes}".strip()
    return (
        f"default-src 'none'; script-src {script_src}; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class RequestGuard:
    """ASGI middleware applying the checks above, then adding the security headers."""

    def __init__(self, app: ASGIApp, *, hosts: HostPolicy, token: str | None, page: Path) -> None:
        self._app = app
        self._hosts = hosts
        self._token = token.encode("utf-8") if token else None
        self._headers = [
            (b"content-security-policy", _content_security_policy(page).encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is not None:
            await refused(scope, receive, self._with_headers(send))
            return
        await self._app(scope, receive, self._with_headers(send))

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        default_port = _DEFAULT_PORTS.get(str(scope.get("scheme", "http")), 80)
        server = _server(scope, default_port)
        host = (_header(scope, b"host") or b"").decode("latin-1")
        if not self._hosts.allows(host, default_port, server):
            return error_response(
                421,
                f"host {host!r} is not served here; add it to --allowed-hosts or "
                f"{ALLOWED_HOSTS_ENV} if it names this server",
                "weavegraph::web::host_not_allowed",
            )
        origin = _header(scope, b"origin")
        if origin is not None and not self._origin_allowed(origin.decode("latin-1"), server):
            return error_response(
                403,
                f"requests from origin {origin.decode('latin-1')!r} are not allowed",
                "weavegraph::web::origin_not_allowed",
            )
        path = str(scope["path"])
        if self._token is not None and path.startswith("/api/") and not self._authorized(scope):
            response = error_response(
                401, "missing or wrong API token", "weavegraph::web::unauthorized"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if scope["method"] not in SAFE_METHODS and not _is_json(scope):
            return error_response(
                415,
                f"requests that change something need 'Content-Type: {JSON_MEDIA_TYPE}'",
                "weavegraph::web::unsupported_media_type",
            )
        return None

    def _origin_allowed(self, origin: str, server: tuple[str, int] | None) -> bool:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return self._hosts.any_host  # "null" (sandboxed frames, files) or garbage
        return self._hosts.allows(parts.netloc, _DEFAULT_PORTS[parts.scheme], server)

    def _authorized(self, scope: Scope) -> bool:
        assert self._token is not None
        given = _header(scope, b"authorization") or b""
        candidate = given[7:].strip() if given[:7].lower() == b"bearer " else b""
        if not candidate and str(scope["path"]).endswith("/events"):
            candidate = _query_token(scope.get("query_string", b""))
        return hmac.compare_digest(candidate, self._token)

    def _with_headers(self, send: Send) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {key.lower() for key, _ in headers}
                headers += [(key, value) for key, value in self._headers if key not in present]
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers


def _is_json(scope: Scope) -> bool:
    content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
    return content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE
