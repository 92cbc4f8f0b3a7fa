"""A fenced save whose connection is lost during its commit, after the server committed it.

A TCP proxy between the checkpointer and PostgreSQL forwards everything, but once armed it lets
the next commit reach the server and then cuts the connection before the answer comes back: the
save that makes its session (its row made, then locked, checked and written by one statement, in
one implicit transaction), or a save of a session this process committed last (that statement
alone). The checkpointer retries on a fresh
connection; the fence now sees its own step stored. Reading the step row back resolves it: the
save succeeded, it is not reported as a conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres


COMMITS = (b"WITH locked AS (", b"COMMIT\x00")
"""How the proxy recognizes a commit: a save's one statement (``_fast_save``; its text goes with
its first uses on a connection), or the ``COMMIT`` of a transaction block (a save planned after
reading its rows: the first one after a lost connection, whose bookkeeping was dropped)."""


class CommitCutter:
    """Forwards TCP both ways; when ``armed``, the server's answer to the next commit is dropped
    with the client's connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.armed = False
        self.cuts = 0
        self.handlers: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        server_r, server_w = await asyncio.open_connection(self.host, self.port)
        self.writers += (client_w, server_w)
        committing = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self.armed and any(marker in data for marker in COMMITS):
                    self.armed = False
                    committing.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if committing.is_set():  # the server's answer to the commit: never delivered
                    self.cuts += 1
                    break
                client_w.write(data)
                await client_w.drain()

        pumps = {asyncio.create_task(upstream()), asyncio.create_task(downstream())}
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await self.close(client_w, server_w)

    async def close(self, *writers: asyncio.StreamWriter) -> None:
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def cutter(postgres_url: str) -> AsyncIterator[tuple[CommitCutter, str]]:
    parts = urlsplit(postgres_url)
    cut = CommitCutter(parts.hostname or "localhost", parts.port or 5432)
    server = await asyncio.start_server(cut.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    netloc = f"{parts.username or ''}{'@' if parts.username else ''}127.0.0.1:{port}"
    query = f"{parts.query}&" if parts.query else ""
    proxied = urlunsplit((parts.scheme, netloc, parts.path, f"{query}sslmode=disable", ""))
    try:
        yield cut, proxied
    finally:
        server.close()
        await cut.close(*cut.writers)
        await asyncio.gather(*cut.handlers, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.parametrize("making", [True, False], ids=["making-the-session", "one-statement"])
async def test_a_commit_whose_answer_was_lost_is_not_a_conflict(
    making: bool, cutter: tuple[CommitCutter, str], postgres_schema: str
) -> None:
    cut, url = cutter
    sid = f"ambiguous-{uuid.uuid4().hex[:8]}"
    async with await PostgresCheckpointer.connect(url, schema=postgres_schema) as cp:
        zero = make_checkpoint(sid, 0)
        if making:  # (the save that makes the session)
            cut.armed = True
        await cp.save(zero, builds_on=-1)
        cut.armed = True
        one = make_checkpoint(sid, 1, extra={"who": "me"})
        await cp.save(one, builds_on=0, events=[{"seq": 0, "message": "step 1"}])
        assert cut.cuts == (2 if making else 1), "an answer was not cut: untested"
        assert await cp.load_latest(sid) == one
        assert [info.step for info in await cp.history(sid)] == [0, 1]
        assert await cp.load_events(sid) == [{"seq": 0, "message": "step 1"}]
        # Someone else's step 1 is still refused.
        other = make_checkpoint(sid, 1, extra={"who": "other"})
        with pytest.raises(wg.CheckpointConflict):
            await cp.save(other, builds_on=0)
