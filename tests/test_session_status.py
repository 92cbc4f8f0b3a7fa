"""Visible interrupts: session_info / list_sessions with status and the pending interrupt,
resume with update/goto, App.invoke raising Interrupted, status derived from storage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg


async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    answer = ctx.interrupt({"question": "approve?", "draft": snapshot.extra.get("draft")})
    return wg.NodePartial(extra={"answer": answer})


async def draft(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"draft": "v1"})


async def after(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(extra={"after": True})


def approval_app() -> wg.App:
    builder = wg.GraphBuilder().add_node("draft", draft).add_node("ask", ask)
    builder.add_node("after", after)
    builder.add_edge(wg.START, "draft").add_edge("draft", "ask").add_edge("ask", "after")
    return builder.add_edge("after", wg.END).compile()


async def test_a_pending_interrupt_is_visible_with_its_value() -> None:
    async with wg.AppRunner(approval_app(), "memory") as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s")
        info = await runner.session_info("s")
        assert isinstance(info, wg.SessionInfo)
        assert info.status == "interrupted"
        assert info.interrupt == wg.PendingInterrupt(
            id="2:ask", node="ask", namespace=None, value={"question": "approve?", "draft": "v1"}
        )
        listed = {i.session_id: i for i in await runner.list_sessions()}
        assert listed["s"].status == "interrupted"
        assert listed["s"].interrupt == info.interrupt
        final = await runner.resume("s", "yes")
        assert final.extra["answer"] == "yes"
        done = await runner.session_info("s")
        assert done.status == "completed"
        assert done.interrupt is None


async def test_resume_with_update_applies_it_before_the_node_reruns() -> None:
    async with wg.AppRunner(approval_app(), "memory") as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s")
        seen: dict[str, Any] = {}

        final = await runner.resume("s", "ok", update=wg.NodePartial(extra={"draft": "v2"}))
        seen.update(final.extra)
        assert seen["draft"] == "v2"
        assert seen["answer"] == "ok"
        assert seen["after"] is True


async def test_resume_with_goto_continues_elsewhere() -> None:
    async with wg.AppRunner(approval_app(), "memory") as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s")
        final = await runner.resume("s", None, goto=["after"])
        assert "answer" not in final.extra  # ask did not run again
        assert final.extra["after"] is True
        with pytest.raises(wg.SessionError, match="not waiting"):
            await runner.resume("s", "late")


async def test_resume_goto_an_unknown_node_is_refused_naming_it() -> None:
    async with wg.AppRunner(approval_app(), "memory") as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s")
        with pytest.raises(wg.SessionError, match="'nowhere'"):
            await runner.resume("s", None, goto=["nowhere"])
        assert (await runner.session_info("s")).status == "interrupted"


async def test_a_static_pause_is_interrupted_without_a_question() -> None:
    async with wg.AppRunner(approval_app(), "memory") as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s", interrupt_before=["ask"])
        info = await runner.session_info("s")
        assert info.status == "interrupted"
        assert info.interrupt is None
        await runner.resume("s", None)  # continues a static pause: now ask asks
        assert (await runner.session_info("s")).interrupt is not None


async def test_status_is_read_from_storage_by_another_runner(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'status.db'}"

    async def boom(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise RuntimeError("boom")

    failing = wg.GraphBuilder().add_node("boom", boom)
    failing = failing.add_edge(wg.START, "boom").add_edge("boom", wg.END).compile()
    checkpointer = await wg.SQLiteCheckpointer.connect(url)
    try:
        async with wg.AppRunner(approval_app(), checkpointer) as runner:
            await runner.create_session("paused", wg.VersionedState())
            await runner.run_until_complete("paused")
            await runner.create_session("halfway", wg.VersionedState())
            await runner.run_step("halfway")
            await runner.create_session("done", wg.VersionedState())
            await runner.run_until_complete("done")
            await runner.resume("done", "ok")
        async with wg.AppRunner(failing, checkpointer) as runner:
            await runner.create_session("failed", wg.VersionedState())
            with pytest.raises(wg.NodeRunError):
                await runner.run_until_complete("failed")
    finally:
        await checkpointer.close()
    reader = await wg.SQLiteCheckpointer.connect(url)
    try:
        async with wg.AppRunner(approval_app(), reader) as other:
            statuses = {i.session_id: i.status for i in await other.list_sessions()}
            assert statuses == {
                "paused": "interrupted",
                "halfway": "stopped",
                "done": "completed",
                "failed": "error",
            }
            assert (await other.session_info("paused")).interrupt is not None
            with pytest.raises(wg.SessionNotFound):
                await other.session_info("nobody")
    finally:
        await reader.close()


async def test_a_running_session_is_running() -> None:
    started, gate = asyncio.Event(), asyncio.Event()

    async def wait(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        started.set()
        await gate.wait()

    app = wg.GraphBuilder().add_node("wait", wait)
    app = app.add_edge(wg.START, "wait").add_edge("wait", wg.END).compile()
    async with wg.AppRunner(app, "memory") as runner:
        await runner.create_session("s", wg.VersionedState())
        task = asyncio.create_task(runner.run_until_complete("s"))
        await started.wait()
        assert (await runner.session_info("s")).status == "running"
        gate.set()
        await task
        assert (await runner.session_info("s")).status == "completed"


async def test_invoke_raises_interrupted_with_the_value() -> None:
    with pytest.raises(wg.Interrupted) as info:
        await approval_app().invoke(wg.VersionedState())
    assert info.value.interrupt.node == "ask"
    assert info.value.interrupt.value == {"question": "approve?", "draft": "v1"}
    assert "waiting for an answer" in str(info.value)
    assert isinstance(info.value, wg.RunError)
