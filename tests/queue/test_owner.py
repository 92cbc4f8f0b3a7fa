"""What a worker does with one claimed session (``queue/owner.py``) when storage falters: the
stream end its run could not store, and a release that fails once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

import pytest
import queue_flows
from save_hooks import SaveHooks

import weavegraph as wg
from weavegraph.checkpoint import Checkpoint
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._claim import Claim
from weavegraph.checkpoint.postgres._sql import q
from weavegraph.errors import CheckpointError
from weavegraph.events.model import is_stream_end_json
from weavegraph.queue import QueueClient, claims
from weavegraph.queue.owner import Owner
from weavegraph.runtime.stop import StopRequest
from weavegraph.status import RunStatus

pytestmark = pytest.mark.postgres

T = TypeVar("T")


class Faltering(SaveHooks, PostgresCheckpointer):
    """A real checkpointer whose first write of a stream end fails (with ``cut_stream_end``),
    and whose next ``fail_releases`` releases and ``fail_saves`` saves fail, as when
    the connection is cut."""

    cut_stream_end = False
    fail_releases = 0
    fail_saves = 0

    async def before_save(
        self, checkpoint: Checkpoint, events: Sequence[Mapping[str, Any]]
    ) -> None:
        if self.fail_saves > 0:
            self.fail_saves -= 1
            raise CheckpointError("the connection was cut")

    async def before_append(self, session_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        if self.cut_stream_end and any(is_stream_end_json(event) for event in events):
            self.cut_stream_end = False
            raise CheckpointError("the connection was cut")

    async def release(
        self, claim: Claim, status: RunStatus, error: str | None = None
    ) -> RunStatus | None:
        if self.fail_releases > 0:
            self.fail_releases -= 1
            raise CheckpointError("the connection was cut")
        return await super().release(claim, status, error)


@pytest.fixture
async def faltering(queue_url: str, client: QueueClient) -> AsyncIterator[Faltering]:
    cp = await Faltering.connect(queue_url)
    assert isinstance(cp, Faltering)
    try:
        yield cp
    finally:
        await cp.close()


async def owner_of_one(
    cp: Faltering, client: QueueClient, *, enqueue: bool = True, app: wg.App | None = None
) -> tuple[Owner, Claim]:
    if enqueue:
        await client.enqueue("e", "go")
    [claim] = await cp.execute(lambda conn: claims.claim(conn, cp.schema, "w", 5.0, 1))
    app = app or queue_flows.build_slow_app()
    return Owner(app, cp, None, 3, StopRequest()), claim


async def test_a_start_whose_drive_failed_on_storage_waits_for_the_next_claim(
    faltering: Faltering, client: QueueClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "0")
    owner, claim = await owner_of_one(faltering, client)
    faltering.fail_saves = 1  # the new session's first save
    assert await owner.own(claim) is RunStatus.QUEUED
    assert (await client.status("e")).pending_requests == 1
    owner, claim = await owner_of_one(faltering, client, enqueue=False)
    assert await owner.own(claim) is RunStatus.COMPLETED
    final = await faltering.load_latest("e")
    assert final is not None
    assert [m.content for m in final.state.messages] == ["go"]  # started from its input
    assert final.state.extra["n"] == 3


async def test_a_claim_taken_over_after_its_run_ended_gives_it_back_as_it_ended(
    faltering: Faltering, client: QueueClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run completed and stored its stream end; only giving the session back was lost (the
    worker died): the next claim neither runs it again nor ends its stream a second time."""
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "0")
    owner, claim = await owner_of_one(faltering, client)
    assert await owner.own(claim) is RunStatus.COMPLETED

    async def release_lost(conn: Any) -> None:
        await conn.execute(
            q("UPDATE {schema}.sessions SET run_status = 'running', claim_token = 'gone', "
              "worker = 'w', lease_until = now() - interval '1 s' WHERE id = 'e'", faltering.schema),
        )  # fmt: skip

    await faltering.execute(release_lost)
    before = await faltering.load_events("e")
    owner, claim = await owner_of_one(faltering, client, enqueue=False)
    assert claim.stale
    assert await owner.own(claim) is RunStatus.COMPLETED
    assert await faltering.load_events("e") == before


async def test_the_worker_stores_the_stream_end_its_run_could_not(
    faltering: Faltering, client: QueueClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that pauses stores its stream end after its step; when that write fails (its
    connection was cut), the worker stores it. (A run that completes stores it in the commit
    of its last step.)"""
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "0")
    owner, claim = await owner_of_one(faltering, client, app=queue_flows.build_ask_app())
    faltering.cut_stream_end = True
    assert await owner.own(claim) is RunStatus.INTERRUPTED
    assert not faltering.cut_stream_end  # the run's own closing write failed
    events = await faltering.load_events("e")
    assert [e["seq"] for e in events] == list(range(len(events)))
    ends = [e["message"] for e in events if is_stream_end_json(e)]
    assert ends == ["session=e status=interrupted step=1"]


async def test_giving_the_session_back_survives_a_transient_failure(
    faltering: Faltering, client: QueueClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "0")
    owner, claim = await owner_of_one(faltering, client)
    faltering.fail_releases = 2
    released = await owner.release(claim, RunStatus.COMPLETED, None)
    assert faltering.fail_releases == 0
    assert released is RunStatus.QUEUED  # (its start request still waits)
    status = await client.status("e")
    assert (status.status, status.worker, status.epoch) == (RunStatus.QUEUED, None, claim.epoch)
