"""Attempts count claims since the session last made progress: a long session whose holders
keep dying, each after committing a step, never goes ``dead``; one whose holders die without
progress does, after ``max_attempts``."""

from __future__ import annotations

from typing import Any

import pytest
import queue_flows

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._claim import Claim
from weavegraph.checkpoint.postgres._sql import q
from weavegraph.events.model import ATTEMPT_RESTARTED_SCOPE
from weavegraph.queue import QueueClient, claims
from weavegraph.queue.owner import Owner
from weavegraph.runtime.stop import StopRequest
from weavegraph.status import RunStatus

pytestmark = pytest.mark.postgres


async def take(cp: PostgresCheckpointer, worker: str) -> Claim:
    """The one claimable session, as a worker's probe takes it."""
    [claim] = await cp.execute(lambda conn: claims.claim(conn, cp.schema, worker, 5.0, 1))
    return claim


async def die(cp: PostgresCheckpointer, sid: str) -> None:
    """The holder vanished: its lease is over (as if ``lease_s`` had passed)."""

    async def work(conn: Any) -> None:
        await conn.execute(
            q("UPDATE {schema}.sessions SET lease_until = now() - interval '1 s' WHERE id = %s",
              cp.schema),
            (sid,),
        )  # fmt: skip

    await cp.execute(work)


async def one_step_then_die(cp: PostgresCheckpointer, app: wg.App, claim: Claim) -> None:
    """Commit one step under ``claim`` (a worker's, shared with the runs of this process), then
    vanish without giving the claim back."""
    sid = claim.session_id
    with cp.working_under(claim):
        async with wg.AppRunner(app, cp) as runner:
            await runner.create_session(sid, "go")
            await runner.run_step(sid)
    await die(cp, sid)


async def test_a_session_that_progresses_between_crashes_never_goes_dead(
    client: QueueClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WG_TEST_ROUNDS", "6")
    monkeypatch.setenv("WG_TEST_SLEEP_MS", "0")
    app = queue_flows.build_slow_app()
    cp = client.checkpointer
    await client.enqueue("long", "go")
    seen = []
    for crash in range(4):  # twice max_attempts: without the reset it would be dead
        claim = await take(cp, f"w{crash}")
        seen.append(claim.attempts)
        await one_step_then_die(cp, app, claim)
    assert seen == [1, 1, 1, 1]
    last = await take(cp, "survivor")
    assert (last.stale, last.attempts) == (True, 1)
    owner = Owner(app, cp, None, max_attempts=2, drain=StopRequest())
    assert await owner.own(last) is RunStatus.COMPLETED
    latest = await cp.load_latest("long")
    assert latest is not None
    assert latest.state.extra["n"] == 6
    events = await cp.load_events("long")
    assert [event["seq"] for event in events] == list(range(len(events)))
    restarted = [event for event in events if event["scope"] == ATTEMPT_RESTARTED_SCOPE]
    # Each takeover says so once, naming the claim it took over.
    holders = [event["metadata"]["previous_holder"] for event in restarted]
    assert holders == ["w0", "w1", "w2", "w3"]


async def test_a_session_whose_holders_die_without_progress_goes_dead(
    client: QueueClient,
) -> None:
    app = queue_flows.build_slow_app()
    cp = client.checkpointer
    await client.enqueue("stuck", "go")
    seen = []
    for crash in range(3):
        claim = await take(cp, f"w{crash}")
        seen.append(claim.attempts)
        await die(cp, "stuck")
    assert seen == [1, 2, 3]
    owner = Owner(app, cp, None, max_attempts=2, drain=StopRequest())
    assert await owner.own(await take(cp, "last")) is RunStatus.DEAD
