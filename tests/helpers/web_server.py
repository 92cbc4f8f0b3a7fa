"""A real ``weavegraph serve`` subprocess for tests, and an SSE reader."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

WEAVEGRAPH = str(Path(sys.executable).with_name("weavegraph"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server: its base URL, process and captured stderr file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=60)


def start_server(
    target: str,
    db: Path | str,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> Server:
    """Start ``weavegraph serve`` (with extra ``args``) on a free loopback port and wait until
    /healthz answers. ``db``: a SQLite file, or a database URL (``postgresql://...``)."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [WEAVEGRAPH, "serve", target, "--port", str(port), "--db", _db_url(db), *args],
            cwd=cwd,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        f"http://127.0.0.1:{port}", process, log, (env or {}).get("WEAVEGRAPH_API_TOKEN")
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


def _db_url(db: Path | str) -> str:
    return db if isinstance(db, str) else f"sqlite://{db}"


@dataclass
class SseMessage:
    id: str | None = None
    data: list[str] = field(default_factory=list)
    event: str | None = None

    def json(self) -> dict[str, Any]:
        return json.loads("\n".join(self.data))


def read_sse(response: httpx.Response) -> Iterator[SseMessage]:
    """Parse a text/event-stream line by line (comments and pings skipped)."""
    message = SseMessage()
    for line in response.iter_lines():
        if line == "":
            if message.data:
                yield message
            message = SseMessage()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            message.data.append(value)
        elif name == "id":
            message.id = value
        elif name == "event":
            message.event = value


def collect_events(
    client: httpx.Client, url: str, headers: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every event of one SSE stream, checking each ``id:`` equals the event's seq."""
    events: list[dict[str, Any]] = []
    with client.stream("GET", url, headers=dict(headers or {}), timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in read_sse(response):
            event = message.json()
            assert message.id == str(event["seq"])
            events.append(event)
    return events
