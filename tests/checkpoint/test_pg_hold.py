"""A run's claim on PostgreSQL (``checkpoint/postgres/_hold``): taken for the run, given back
with how the run ended, one run at a time per session even within one process."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from queue_procs import raw

import weavegraph as wg
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres import _checkpointer as checkpointer_module
from weavegraph.checkpoint.postgres._claim import Claim
from weavegraph.events.model import STREAM_END_SCOPE
from weavegraph.queue import QueueClient
from weavegraph.status import RunStatus
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres


def ask_then_fail() -> wg.App:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"answer": ctx.interrupt("go on?")})

    async def check(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        if snapshot.extra["answer"] != "yes":
            raise ValueError("not approved")
        return wg.NodePartial(extra={"done": True})

    return (
        wg.GraphBuilder()
        .add_node("ask", ask)
        .add_node("check", check)
        .add_edge(wg.START, "ask")
        .add_edge("ask", "check")
        .add_edge("check", wg.END)
        .compile()
    )


def one_node() -> wg.App:
    return (
        wg.GraphBuilder()
        .add_node("a", lambda snapshot, ctx: wg.NodePartial(extra={"a": 1}))
        .add_edge(wg.START, "a")
        .add_edge("a", wg.END)
        .compile()
    )


async def test_each_run_claims_the_session_and_gives_it_back_with_its_status(
    cp: PostgresCheckpointer,
) -> None:
    queue = QueueClient(cp)
    async with wg.AppRunner(ask_then_fail(), cp) as runner:
        paused = await runner.drive("s", "hi")
        assert paused.status is RunStatus.INTERRUPTED
        after_pause = await queue.status("s")
        assert (after_pause.status, after_pause.epoch, after_pause.worker) == (
            RunStatus.INTERRUPTED, 1, None,
        )  # fmt: skip
        with pytest.raises(wg.NodeRunError):
            await runner.drive("s", answer="no")
        failed = await queue.status("s")
        assert (failed.status, failed.epoch) == (RunStatus.ERROR, 2)
    assert cp.claims == {}


async def test_app_invoke_and_run_step_claim_too(cp: PostgresCheckpointer) -> None:
    app = (
        wg.GraphBuilder()
        .add_node("a", lambda snapshot, ctx: wg.NodePartial(extra={"a": 1}))
        .add_node("b", lambda snapshot, ctx: wg.NodePartial(extra={"b": 1}))
        .add_edge(wg.START, "a")
        .add_edge("a", "b")
        .add_edge("b", wg.END)
        .compile()
    )
    queue = QueueClient(cp)
    await app.invoke("go", session_id="inv", checkpointer=cp)
    assert (await queue.status("inv")).status is RunStatus.COMPLETED
    async with wg.AppRunner(app, cp) as runner:
        await runner.create_session("steps", "go")
        await runner.run_step("steps")
        mid = await queue.status("steps")
        assert (mid.status, mid.epoch) == (RunStatus.STOPPED, 1)  # given back between steps
        await runner.run_step("steps")
    done = await queue.status("steps")
    assert (done.status, done.epoch) == (RunStatus.COMPLETED, 2)


async def test_two_runs_of_one_session_in_one_process_do_not_overlap(
    cp: PostgresCheckpointer,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def wait(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        entered.set()
        await release.wait()
        return wg.NodePartial(extra={"waited": True})

    app = wg.GraphBuilder().add_node("w", wait).add_edge(wg.START, "w").add_edge("w", wg.END)
    first_runner = wg.AppRunner(app.compile(), cp)
    second_runner = wg.AppRunner(app.compile(), cp)
    async with first_runner, second_runner:
        await first_runner.create_session("one", "go")
        first = asyncio.create_task(first_runner.run_until_complete("one"))
        await entered.wait()
        with pytest.raises(wg.SessionBusy, match="another run in this process"):
            await second_runner.drive("one")
        release.set()
        await first
    assert (await QueueClient(cp).status("one")).status is RunStatus.COMPLETED


async def test_a_run_cancelled_while_its_claim_commits_gives_the_claim_back(
    cp: PostgresCheckpointer, postgres_url: str
) -> None:
    async with wg.AppRunner(one_node(), cp) as runner:
        await runner.create_session("c", "go")
        # Another transaction holds the session row: the run's claim waits for it, in flight.
        async with await psycopg.AsyncConnection.connect(postgres_url) as blocker:
            lock = raw(
                f'SELECT pg_backend_pid() FROM "{cp.schema}".sessions WHERE id = %s FOR UPDATE'
            )
            row = await (await blocker.execute(lock, ("c",))).fetchone()
            assert row is not None
            run = asyncio.create_task(runner.run_until_complete("c"))
            await blocked_by(postgres_url, row[0])
            run.cancel()  # the run is cancelled while its claim is about to commit
            await blocker.commit()
            with pytest.raises(asyncio.CancelledError):
                await run
    status = await QueueClient(cp).status("c")
    assert (status.status, status.epoch, status.worker, status.lease_until) == (
        RunStatus.CANCELLED, 1, None, None,
    )  # fmt: skip
    assert cp.claims == {}


async def blocked_by(url: str, pid: int) -> None:
    """Until some backend waits for a lock that backend ``pid`` holds."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as watcher:
        query = raw("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))")
        while True:
            row = await (await watcher.execute(query, (pid,))).fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(0.01)


async def test_a_runs_last_events_give_its_claim_back_in_their_commit(
    cp: PostgresCheckpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream end is stored and the session given back in one commit: no release of its
    own, for a run that completes, pauses or fails alike."""
    releases: list[str] = []
    release = cp.release

    async def counted(claim: Claim, status: RunStatus, error: str | None = None) -> object:
        releases.append(claim.session_id)
        return await release(claim, status, error)

    monkeypatch.setattr(cp, "release", counted)
    queue = QueueClient(cp)
    async with wg.AppRunner(ask_then_fail(), cp) as runner:
        assert (await runner.drive("s", "hi")).status is RunStatus.INTERRUPTED
        assert (await queue.status("s")).status is RunStatus.INTERRUPTED
        with pytest.raises(wg.NodeRunError):
            await runner.drive("s", answer="no")
        assert (await queue.status("s")).status is RunStatus.ERROR
    assert releases == []
    ends = [
        event["message"]
        for event in await cp.load_events("s")
        if event["scope"] == STREAM_END_SCOPE
    ]
    assert [end.split()[1] for end in ends] == ["status=interrupted", "status=error"]
    row = await cp.execute(
        lambda conn: conn.execute(
            raw(f'SELECT claim_token, worker FROM "{cp.schema}".sessions WHERE id = %s'), ("s",)
        )
    )
    assert await row.fetchone() == (None, None)


@pytest.mark.parametrize("made_elsewhere", [False, True], ids=["planned", "checked"])
async def test_a_completing_step_gives_the_claim_back_in_its_own_commit(
    cp: PostgresCheckpointer, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
    made_elsewhere: bool,
) -> None:  # fmt: skip
    """The step that completes a run carries its stream end and the release: no append and no
    release of their own. Planned from this process's last commit (one statement) or checked
    under the row lock (a session another process made: nothing of it is cached here)."""
    calls: list[str] = []
    append, release = cp.append_events, cp.release

    async def counted_append(*args: object, **kwargs: object) -> None:
        calls.append("append")
        await append(*args, **kwargs)  # type: ignore[arg-type]

    async def counted_release(*args: object, **kwargs: object) -> object:
        calls.append("release")
        return await release(*args, **kwargs)  # type: ignore[arg-type]

    if made_elsewhere:
        other = await PostgresCheckpointer.connect(postgres_url, schema=cp.schema)
        try:
            async with wg.AppRunner(one_node(), other) as runner:
                await runner.create_session("c", "go")
        finally:
            await other.close()
    monkeypatch.setattr(cp, "append_events", counted_append)
    monkeypatch.setattr(cp, "release", counted_release)
    async with wg.AppRunner(one_node(), cp) as runner:
        if not made_elsewhere:
            await runner.create_session("c", "go")
        await runner.run_until_complete("c")
    assert calls == []
    assert (await QueueClient(cp).status("c")).status is RunStatus.COMPLETED
    row = await cp.execute(
        lambda conn: conn.execute(
            raw(
                f'SELECT claim_token, worker, lease_until FROM "{cp.schema}".sessions WHERE id = %s'
            ),
            ("c",),
        )
    )
    assert await row.fetchone() == (None, None, None)
    stored = await cp.load_events("c")
    assert stored[-1]["scope"] == STREAM_END_SCOPE
    assert "status=completed" in stored[-1]["message"]


async def test_a_claim_lost_before_the_last_events_gives_nothing_back(
    cp: PostgresCheckpointer,
) -> None:
    """A run whose claim was taken over stores no closing events under it (LeaseLost, logged)
    and leaves the new holder's claim alone."""
    async with wg.AppRunner(one_node(), cp) as runner:
        await runner.create_session("t", "go")
        async with cp.hold("t") as claim:
            claim.ended = RunStatus.COMPLETED
            await cp.execute(  # (another process takes the session over)
                lambda conn: conn.execute(
                    raw(f"UPDATE \"{cp.schema}\".sessions SET claim_token = 'other' WHERE id = 't'")
                )
            )
            claim.closing = True
            with pytest.raises(wg.LeaseLost):
                await cp.append_events("t", [{"seq": 5, "message": "late"}], builds_on=0)
    row = await cp.execute(
        lambda conn: conn.execute(
            raw(f'SELECT claim_token FROM "{cp.schema}".sessions WHERE id = %s'), ("t",)
        )
    )
    assert await row.fetchone() == ("other",)
    assert "late" not in [event.get("message") for event in await cp.load_events("t")]


async def test_one_heartbeat_keeps_every_in_process_claim_alive(
    postgres_url: str, postgres_schema: str
) -> None:
    """Claims of runs in one process are renewed together by one task (a run starts none), and
    one taken over elsewhere is marked lost by it."""
    lease = 0.6
    cp = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema, lease_s=lease)

    async def alive(sid: str) -> bool:
        row = await cp.execute(
            lambda conn: conn.execute(
                raw(f'SELECT lease_until > now() FROM "{postgres_schema}".sessions WHERE id = %s'),
                (sid,),
            )
        )
        return bool((await row.fetchone())[0])

    try:
        async with wg.AppRunner(one_node(), cp) as runner:
            for sid in ("a", "b"):
                await runner.create_session(sid, "go")
            async with cp.hold("a") as first, cp.hold("b") as second:
                beating = cp.heartbeats._task  # pyright: ignore[reportPrivateUsage]
                await asyncio.sleep(3 * lease)  # no commit meanwhile: only heartbeats renew
                assert await alive("a")
                assert await alive("b")
                assert cp.heartbeats._task is beating  # pyright: ignore[reportPrivateUsage]
                await cp.execute(
                    lambda conn: conn.execute(
                        raw(
                            f"UPDATE \"{postgres_schema}\".sessions SET claim_token = 'other' "
                            "WHERE id = 'b'"
                        )
                    )
                )
                await asyncio.sleep(lease)
                assert (first.lost, second.lost) == (False, True)
    finally:
        await cp.close()


async def test_claims_asked_together_are_taken_in_one_commit_and_refused_alone(
    cp: PostgresCheckpointer,
    postgres_url: str,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One batch: a session asked for twice (the later request sees the earlier one's claim), a
    session another process holds, and a free one; the refusals name their holders."""
    other = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        held = await other.claim("held")
        batches: list[int] = []
        claim_batch = cp._claim_batch  # pyright: ignore[reportPrivateUsage]

        async def counted(batch: list[object]) -> object:
            batches.append(len(batch))
            return await claim_batch(batch)  # type: ignore[arg-type]

        monkeypatch.setattr(cp._claims, "_commit", counted)  # pyright: ignore[reportPrivateUsage]
        results = await asyncio.gather(
            cp.claim("twice"), cp.claim("twice"), cp.claim("held"), cp.claim("free"),
            return_exceptions=True,
        )  # fmt: skip
        assert batches == [4]
        first, second, busy, free = results
        assert isinstance(first, Claim)
        assert first.session_id == "twice"
        assert isinstance(second, wg.SessionBusy)
        assert second.holder == cp.holder
        assert isinstance(busy, wg.SessionBusy)
        assert busy.holder == held.holder
        assert "lease expires in" in str(busy)
        assert isinstance(free, Claim)
        assert free.session_id == "free"
        assert not free.stale
        assert free.holder == cp.holder
    finally:
        await other.close()


async def test_claims_of_sessions_this_process_saved_are_one_statement_and_refused_alone(
    cp: PostgresCheckpointer,
    postgres_url: str,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sessions whose rows this process committed are claimed by one statement outside a
    transaction block: a free one is claimed, one another process holds is refused naming its
    holder, and one whose row was deleted behind this process's back is made and claimed the
    general way."""
    for sid in ("free", "held", "gone"):
        await cp.save(make_checkpoint(sid, 0), builds_on=-1)
    other = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        held = await other.claim("held")
        await cp.execute(
            lambda conn: conn.execute(
                raw(f"DELETE FROM \"{cp.schema}\".sessions WHERE id = 'gone'")
            )
        )
        ways: list[tuple[str, list[str]]] = []
        for name in ("claim_existing", "send_claims"):
            real = getattr(checkpointer_module, name)

            def spied(
                conn: object, schema: str, asked: list[Any], real: Any = real, name: str = name
            ) -> Any:
                ways.append((name, [request.session_id for request in asked]))
                return real(conn, schema, asked)

            monkeypatch.setattr(checkpointer_module, name, spied)
        free, busy, gone = await asyncio.gather(
            cp.claim("free"), cp.claim("held"), cp.claim("gone"), return_exceptions=True
        )
        assert ways == [
            ("claim_existing", ["free", "held", "gone"]), ("send_claims", ["gone"])
        ]  # fmt: skip
        assert isinstance(free, Claim)
        assert not free.stale
        assert isinstance(busy, wg.SessionBusy)
        assert busy.holder == held.holder
        assert "lease expires in" in str(busy)
        assert isinstance(gone, Claim)
        rows = await cp.execute(
            lambda conn: conn.execute(
                raw(f'SELECT id, claim_token, epoch FROM "{cp.schema}".sessions ORDER BY id')
            )
        )
        assert await rows.fetchall() == [
            ("free", free.token, free.epoch), ("gone", gone.token, gone.epoch),
            ("held", held.token, held.epoch),
        ]  # fmt: skip
    finally:
        await other.close()
