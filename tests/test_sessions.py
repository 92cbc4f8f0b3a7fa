"""AppRunner: sessions, steps, interrupts, iterative sessions, inspection and time travel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.events.model import Event


class Collector:
    lifecycle = False

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def ends(self) -> list[str]:
        return [e.message for e in self.events if e.is_stream_end]


def counter(key: str) -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={key: int(snapshot.extra.get(key, 0)) + 1})

    return node


def chain_app(*names: str) -> wg.App:
    builder = wg.GraphBuilder()
    previous = wg.START
    for name in names:
        builder.add_node(name, counter(name)).add_edge(previous, name)
        previous = name
    return builder.add_edge(previous, wg.END).compile()


async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    answer = ctx.interrupt({"question": "name?"})
    return wg.NodePartial(extra={"name": answer})


def asking_app() -> wg.App:
    return (
        wg.GraphBuilder()
        .add_node("a", counter("a"))
        .add_node("ask", ask)
        .add_edge(wg.START, "a")
        .add_edge("a", "ask")
        .add_edge("ask", wg.END)
        .compile()
    )


async def test_create_session_then_step_by_step() -> None:
    async with wg.AppRunner(chain_app("a", "b"), "memory") as runner:
        init = await runner.create_session("s1", "hello")
        assert (init.resumed, init.step) == (False, 0)
        first = await runner.run_step("s1")
        assert first.completed is False
        assert first.report is not None
        assert first.report.step == 1
        assert first.report.ran_nodes == ("a",)
        assert first.report.updated_channels == ("extra",)
        assert first.report.next_frontier == ("b",)
        second = await runner.run_step("s1")
        assert second.completed is True
        assert (await runner.get_state("s1")).extra == {"a": 1, "b": 1}
        again = await runner.create_session("s1", "ignored: the checkpoint wins")
        assert (again.resumed, again.step) == (True, 2)


async def test_existing_checkpoint_wins_across_runners(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'w.db'}"
    app = chain_app("a", "b", "c")
    async with wg.AppRunner(app, "sqlite", db_url=url) as runner:
        await runner.create_session("durable", "hi")
        await runner.run_step("durable")
    async with wg.AppRunner(app, wg.CheckpointerType.SQLite, db_url=url) as runner:
        init = await runner.create_session("durable", "other")
        assert (init.resumed, init.step) == (True, 1)
        state = await runner.run_until_complete("durable")
        assert state.extra == {"a": 1, "b": 1, "c": 1}
        assert state.messages[0].content == "hi"
        history = await runner.history("durable")
        assert [h.step for h in history] == [0, 1, 2, 3]
        assert history[2].ran_nodes == ("b",)
        assert (await runner.state_at("durable", 1)).extra == {"a": 1}
        assert [s.session_id for s in await runner.list_sessions()] == ["durable"]


async def test_static_interrupts_before_after_and_each_step() -> None:
    async with wg.AppRunner(chain_app("a", "b", "c"), "memory") as runner:
        await runner.create_session("s", "go")
        paused = await runner.run_step("s", interrupt_before=["a"])
        assert paused.paused == wg.PausedReason(kind="before", step=1, nodes=("a",))
        assert paused.report is None
        ran = await runner.run_step("s", interrupt_before=["a"])  # the pause was taken: run
        assert ran.report is not None
        assert ran.report.ran_nodes == ("a",)
        after = await runner.run_step("s", interrupt_after=["b"])
        assert after.paused is not None
        assert (after.paused.kind, after.paused.nodes) == ("after", ("b",))
        assert after.report is not None
        each = await runner.run_step("s", interrupt_each_step=True)
        assert each.completed is True  # the last step completes rather than pausing


async def test_dynamic_interrupt_and_resume() -> None:
    bus = Collector()
    async with wg.AppRunner(asking_app(), "memory", event_bus=bus) as runner:
        await runner.create_session("q", "hi")
        state = await runner.run_until_complete("q")
        assert state.extra == {"a": 1}
        assert bus.ends()[-1] == "session=q status=interrupted step=2"
        (asked,) = [e for e in bus.events if e.scope == "interrupt"]
        assert asked.metadata["value"] == {"question": "name?"}
        assert asked.metadata["node_id"] == "ask"
        paused = await runner.run_step("q")
        assert paused.paused is not None
        assert paused.paused.kind == "interrupt"
        assert paused.paused.value == {"question": "name?"}
        final = await runner.resume("q", "Ada")
        assert final.extra == {"a": 1, "name": "Ada"}
        assert bus.ends()[-1] == "session=q status=completed step=3"
        assert [e.seq for e in bus.events] == list(range(len(bus.events)))
        with pytest.raises(wg.SessionError):
            await runner.resume("q", "again")


async def test_iterative_session_keeps_counting_steps() -> None:
    app = chain_app("reply")
    bus = Collector()
    async with wg.AppRunner(app, "memory", event_bus=bus) as runner:
        init = await runner.create_iterative_session("chat", wg.VersionedState(), "reply")
        assert init.step == 0
        user = wg.NodePartial(messages=(wg.Message.user("one"),))
        first = await runner.invoke_next("chat", user, "reply")
        assert first.extra == {"reply": 1}
        user2 = wg.NodePartial(messages=(wg.Message.user("two"),))
        second = await runner.invoke_next("chat", user2, "reply")
        assert second.extra == {"reply": 2}
        assert [m.content for m in second.messages] == ["one", "two"]
        assert len(bus.ends()) == 2
        assert bus.ends()[-1].endswith("status=completed step=4")
        final = await runner.finish_iterative_session("chat")
        assert final == second


async def test_update_state_is_recorded_as_its_own_step(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'u.db'}"
    async with wg.AppRunner(chain_app("a", "b"), "sqlite", db_url=url) as runner:
        await runner.create_session("u", "hi")
        await runner.run_step("u")
        report = await runner.update_state("u", wg.NodePartial(extra={"edited": True}))
        assert (report.step, report.ran_nodes, report.next_frontier) == (2, (), ("b",))
        assert report.updated_channels == ("extra",)
        state = await runner.run_until_complete("u")
        assert state.extra == {"a": 1, "edited": True, "b": 1}
        assert [h.step for h in await runner.history("u")] == [0, 1, 2, 3]


async def test_fork_and_delete(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'f.db'}"
    async with wg.AppRunner(chain_app("a", "b"), "sqlite", db_url=url) as runner:
        await runner.create_session("orig", "hi")
        await runner.run_until_complete("orig")
        init = await runner.fork("orig", 1, "copy")
        assert (init.resumed, init.step) == (True, 1)
        forked = await runner.get_state("copy")
        assert forked.extra == {"a": 1}
        assert (await runner.run_until_complete("copy")).extra == {"a": 1, "b": 1}
        with pytest.raises(wg.SessionError):
            await runner.fork("orig", 1, "copy")
        assert await runner.delete_session("orig") is True
        with pytest.raises(wg.SessionNotFound):
            await runner.get_state("orig")
        assert await runner.delete_session("orig") is False


async def test_session_ids_are_validated_and_unknown_sessions_reported() -> None:
    async with wg.AppRunner(chain_app("a"), "memory") as runner:
        for bad in ["", "has space", "x" * 129, "semi;colon", "../etc"]:
            with pytest.raises(wg.InvalidSessionId):
                await runner.create_session(bad, "hi")
        with pytest.raises(wg.SessionNotFound):
            await runner.run_step("missing")
        with pytest.raises(wg.SessionNotFound):
            await runner.history("missing")


async def test_node_failure_in_a_session_can_be_retried_by_stepping_again() -> None:
    attempts = 0

    async def flaky(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first time fails")
        return wg.NodePartial(extra={"ok": True})

    app = (
        wg.GraphBuilder()
        .add_node("flaky", flaky)
        .add_edge(wg.START, "flaky")
        .add_edge("flaky", wg.END)
        .compile()
    )
    bus = Collector()
    async with wg.AppRunner(app, "memory", event_bus=bus) as runner:
        await runner.create_session("f", "hi")
        with pytest.raises(wg.NodeRunError):
            await runner.run_step("f")
        assert bus.ends() == ["session=f status=error step=1"]
        state = await runner.run_until_complete("f")
        assert state.extra == {"ok": True}
        assert state.errors[0].node_id == "flaky"


async def test_autosave_off_keeps_sessions_in_the_runner_only() -> None:
    saver = wg.InMemoryCheckpointer()
    async with wg.AppRunner(chain_app("a"), saver, autosave=False) as runner:
        await runner.create_session("mem", "hi")
        assert (await runner.run_until_complete("mem")).extra == {"a": 1}
    assert await saver.load_latest("mem") is None


async def test_seed_constructors_and_the_real_event_bus() -> None:
    sink = wg.MemorySink()
    bus = wg.EventBus.with_sink(sink)
    app = asking_app()
    async with wg.AppRunner.with_bus(app, bus) as runner:
        await runner.create_session("b", "hi")
        await runner.run_until_complete("b")
    assert sink.snapshot()[-1].is_stream_end
    sink2 = wg.MemorySink()
    runner2 = wg.AppRunner.with_options_and_bus(
        chain_app("a"), "memory", True, wg.EventBus.with_sink(sink2), True
    )
    async with runner2:
        await runner2.create_session("c", "hi")
        await runner2.run_until_complete("c")
    assert sink2.snapshot()[-1].message == "session=c status=completed step=1"


async def test_unknown_checkpointer_is_a_config_error() -> None:
    with pytest.raises(wg.ConfigError):
        async with wg.AppRunner(chain_app("a"), "floppy"):
            pass
