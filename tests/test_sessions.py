"""AppRunner: sessions, steps, interrupts, iterative sessions, inspection and time travel."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from event_collector import Collector

import weavegraph as wg
from weavegraph.events import INVOCATION_END_SCOPE


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
        # The last step before END pauses too; the session completes when run again.
        assert each.paused == wg.PausedReason(kind="step", step=3)
        assert each.completed is False
        assert each.report is not None
        done = await runner.run_step("s", interrupt_each_step=True)
        assert (done.completed, done.report, done.paused) == (True, None, None)


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
        # One stream across invocations: each ends with an invocation end, the session with
        # the stream end.
        invocations = [e.message for e in bus.events if e.scope == INVOCATION_END_SCOPE]
        assert invocations == [
            "session=chat status=completed step=2",
            "session=chat status=completed step=4",
        ]
        assert bus.ends() == []
        final = await runner.finish_iterative_session("chat")
        assert final == second
        assert bus.ends() == ["session=chat status=completed step=4"]
        assert bus.events[-1].is_stream_end
        assert [e.seq for e in bus.events] == list(range(len(bus.events)))


async def test_an_iterative_session_may_enter_at_start() -> None:
    """START as the entry: its edges and routers decide each invocation's first nodes."""
    builder = (
        wg.GraphBuilder().add_node("greet", counter("greet")).add_node("echo", counter("echo"))
    )
    builder.add_edge(wg.START, "greet").add_edge("greet", wg.END)
    builder.add_conditional_edge(
        wg.START, lambda snapshot: "echo" if len(snapshot.messages) > 1 else wg.END
    )
    builder.add_edge("echo", wg.END)
    app = builder.compile()
    bus = Collector()
    async with wg.AppRunner(app, "memory", event_bus=bus) as runner:
        await runner.create_iterative_session("it", wg.VersionedState(), wg.START)
        one = wg.NodePartial(messages=(wg.Message.user("one"),))
        first = await runner.invoke_next("it", one, wg.START)
        assert first.extra == {"greet": 1}
        two = wg.NodePartial(messages=(wg.Message.user("two"),))
        second = await runner.invoke_next("it", two, wg.START)
        assert second.extra == {"greet": 2, "echo": 1}
        steps = [h.step for h in await runner.history("it")]
        assert steps == sorted(set(steps))  # step numbers keep increasing
        await runner.finish_iterative_session("it")
        assert len(bus.ends()) == 1


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


async def test_update_state_refuses_what_is_not_a_node_partial() -> None:
    async with wg.AppRunner(chain_app("a"), wg.InMemoryCheckpointer()) as runner:
        await runner.create_session("u", "hi")
        with pytest.raises(wg.StateError, match="takes a NodePartial, got dict"):
            await runner.update_state("u", {"extra": {"x": 1}})  # type: ignore[arg-type]
        assert [h.step for h in await runner.history("u")] == [0]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"event_bus": "stdout"}, "event_bus must be an EventBus, got str"),
        ({"max_concurrency": 0}, "max_concurrency must be None or an int >= 1, got 0"),
        ({"max_concurrency": "4"}, "max_concurrency must be None or an int >= 1, got '4'"),
    ],
)
def test_a_wrong_runner_option_is_a_config_error_naming_it(
    options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(wg.ConfigError) as raised:
        wg.AppRunner(chain_app("a"), "memory", **options)
    assert str(raised.value) == problem


@pytest.mark.parametrize("step", ["1", 1.0, True, -1])
async def test_a_step_that_is_not_an_int_is_refused_before_sqlite_matches_it(
    tmp_path: Path, step: Any
) -> None:
    url = f"sqlite://{tmp_path / 'steps.db'}"
    async with wg.AppRunner(chain_app("a"), "sqlite", db_url=url) as runner:
        await runner.create_session("s", "hi")
        await runner.run_until_complete("s")
        with pytest.raises(wg.SessionError, match=r"a step is an int >= 0, got "):
            await runner.state_at("s", step)
        with pytest.raises(wg.SessionError, match=r"a step is an int >= 0, got "):
            await runner.fork("s", step, "copy")
        assert [info.session_id for info in await runner.list_sessions()] == ["s"]


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


# --- persistence of runner decisions, failures at START, graceful stop ------------------------


async def test_a_taken_interrupt_before_pause_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'p.db'}"
    app = chain_app("a", "b")
    async with wg.AppRunner(app, "sqlite", db_url=url) as runner:
        await runner.create_session("p", "hi")
        paused = await runner.run_step("p", interrupt_before=["b"])
        assert paused.report is not None  # step 1 ran "a"
        paused = await runner.run_step("p", interrupt_before=["b"])
        assert paused.paused == wg.PausedReason(kind="before", step=2, nodes=("b",))
    bus = Collector()
    async with wg.AppRunner(app, "sqlite", db_url=url, event_bus=bus) as runner:
        state = await runner.run_until_complete("p", interrupt_before=["b"])
        assert state.extra == {"a": 1, "b": 1}
        assert bus.ends() == ["session=p status=completed step=2"]
        history = await runner.history("p")
        assert [(h.step, h.ran_nodes) for h in history] == [(0, ()), (1, ("a",)), (2, ("b",))]


async def test_a_new_pause_is_taken_before_each_later_step() -> None:
    builder = wg.GraphBuilder().add_node("tick", counter("n")).add_edge(wg.START, "tick")
    app = builder.add_conditional_edge(
        "tick", lambda s: "tick" if s.extra["n"] < 2 else wg.END, targets=["tick", wg.END]
    ).compile()
    async with wg.AppRunner(app, "memory") as runner:
        await runner.create_session("t", "hi")
        kinds: list[str] = []
        while not (result := await runner.run_step("t", interrupt_before=["tick"])).completed:
            kinds.append(result.paused.kind if result.paused else "ran")
        assert kinds == ["before", "ran", "before"]


def start_routed_app(router: Any) -> wg.App:
    return (
        wg.GraphBuilder()
        .add_node("a", counter("a"))
        .add_conditional_edge(wg.START, router, targets=["a"])
        .add_edge("a", wg.END)
        .compile()
    )


async def test_a_failing_start_router_is_recorded_and_retried(tmp_path: Path) -> None:
    calls = 0

    def flaky_router(snapshot: wg.StateSnapshot) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("no route yet")
        return "a"

    url = f"sqlite://{tmp_path / 'r.db'}"
    bus = Collector()
    app = start_routed_app(flaky_router)
    async with wg.AppRunner(app, "sqlite", db_url=url, event_bus=bus) as runner:
        with pytest.raises(wg.RoutingError):
            await runner.create_session("r", "hi")
        assert bus.ends() == ["session=r status=error step=0"]
    async with wg.AppRunner(app, "sqlite", db_url=url, event_bus=bus) as runner:
        init = await runner.create_session("r", "hi")
        assert (init.resumed, init.step) == (True, 0)
        failed = await runner.get_state("r")
        assert [(e.scope, e.node_id, e.step) for e in failed.errors] == [("router", "Start", 0)]
        state = await runner.run_until_complete("r")
        assert state.extra == {"a": 1}
        assert [h.step for h in await runner.history("r")] == [0, 1]
        assert bus.ends()[-1] == "session=r status=completed step=1"


async def test_an_unknown_id_from_the_start_router_fails_like_other_routing() -> None:
    saver = wg.InMemoryCheckpointer()
    with pytest.raises(wg.RoutingError):
        await start_routed_app(lambda s: "nowhere").invoke("hi", session_id="u", checkpointer=saver)
    latest = await saver.load_latest("u")
    assert latest is not None
    assert latest.frontier == (wg.START,)
    assert latest.state.errors[0].node_id == wg.START


def looping_app(rounds: int, on_tick: Any = None) -> wg.App:
    async def tick(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        n = int(snapshot.extra.get("n", 0)) + 1
        if on_tick is not None:
            await on_tick(n)
        return wg.NodePartial(extra={"n": n}, messages=(wg.Message.assistant(f"tick {n}"),))

    return (
        wg.GraphBuilder()
        .add_node("tick", tick)
        .add_edge(wg.START, "tick")
        .add_conditional_edge(
            "tick", lambda s: "tick" if s.extra["n"] < rounds else wg.END, targets=["tick", wg.END]
        )
        .compile()
    )


async def test_request_stop_from_a_node_stops_at_the_step_boundary(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 's.db'}"
    holder: list[wg.AppRunner] = []

    async def on_tick(n: int) -> None:
        if n == 3:
            holder[0].request_stop()

    bus = Collector()
    app = looping_app(6, on_tick)
    async with wg.AppRunner(app, "sqlite", db_url=url, event_bus=bus) as runner:
        holder.append(runner)
        await runner.create_session("s", "go")
        stopped = await runner.run_until_complete("s")
        assert stopped.extra == {"n": 3}  # step 3 finished and was committed, nothing more ran
        assert bus.ends() == ["session=s status=stopped step=3"]
        assert runner.stop_requested is False  # honoured, so spent
    async with wg.AppRunner(app, "sqlite", db_url=url, event_bus=bus) as runner:
        final = await runner.run_until_complete("s")
    reference = await looping_app(6).invoke("go")
    assert final.to_json_value() == reference.to_json_value()
    assert bus.ends()[-1] == "session=s status=completed step=6"
    assert [e.seq for e in bus.events] == list(range(len(bus.events)))


async def test_request_stop_from_another_thread_and_before_a_run() -> None:
    reached = asyncio.Event()
    proceed = asyncio.Event()

    async def on_tick(n: int) -> None:
        if n == 2:
            reached.set()
            await proceed.wait()

    bus = Collector()
    async with wg.AppRunner(looping_app(5, on_tick), "memory", event_bus=bus) as runner:
        runner.request_stop()  # no run in progress: the next run stops before its first step
        await runner.create_session("s", "go")
        assert (await runner.run_until_complete("s")).extra == {}
        assert bus.ends() == ["session=s status=stopped step=0"]

        async def stopper() -> None:
            await reached.wait()
            await asyncio.to_thread(runner.request_stop)
            proceed.set()

        task = asyncio.create_task(stopper())
        assert (await runner.run_until_complete("s")).extra == {"n": 2}
        await task
        assert bus.ends()[-1] == "session=s status=stopped step=2"
        assert (await runner.run_until_complete("s")).extra == {"n": 5}
        assert bus.ends()[-1] == "session=s status=completed step=5"


async def test_handle_signals_stops_on_sigterm_and_restores_the_old_handler() -> None:
    received: list[int] = []

    def previous(signum: int, frame: object) -> None:
        received.append(signum)

    async def on_tick(n: int) -> None:
        if n == 2:
            signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)  # the loop runs its signal callbacks between awaits

    old = signal.signal(signal.SIGTERM, previous)
    try:
        async with wg.AppRunner(looping_app(50, on_tick), "memory") as runner:
            await runner.create_session("s", "go")
            with runner.handle_signals():
                stopped = await runner.run_until_complete("s")
            assert 2 <= int(stopped.extra["n"]) < 50
            assert signal.getsignal(signal.SIGTERM) is previous
            assert received == []  # the runner's handler took it
            assert (await runner.run_until_complete("s")).extra["n"] == 50
    finally:
        signal.signal(signal.SIGTERM, old)


async def test_a_resume_answer_survives_a_stop_and_a_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'q.db'}"
    async with wg.AppRunner(asking_app(), "sqlite", db_url=url) as runner:
        await runner.create_session("q", "hi")
        await runner.run_until_complete("q")
        runner.request_stop()
        assert (await runner.resume("q", "Ada")).extra == {"a": 1}  # stopped before re-running
    async with wg.AppRunner(asking_app(), "sqlite", db_url=url) as runner:
        state = await runner.run_until_complete("q")
        assert state.extra == {"a": 1, "name": "Ada"}


async def test_fork_copies_history_up_to_the_step(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'h.db'}"
    async with wg.AppRunner(chain_app("a", "b", "c"), "sqlite", db_url=url) as runner:
        await runner.create_session("orig", "hi")
        await runner.run_until_complete("orig")
        await runner.fork("orig", 2, "copy")
        history = await runner.history("copy")
        assert [(h.step, h.ran_nodes) for h in history] == [(0, ()), (1, ("a",)), (2, ("b",))]
        assert (await runner.state_at("copy", 1)).extra == {"a": 1}
        assert (await runner.run_until_complete("copy")).extra == {"a": 1, "b": 1, "c": 1}
        assert [h.step for h in await runner.history("copy")] == [0, 1, 2, 3]
        assert len(await runner.history("orig")) == 4


async def test_run_until_complete_takes_a_per_run_step_limit() -> None:
    bus = Collector()
    async with wg.AppRunner(looping_app(10), "memory", event_bus=bus) as runner:
        await runner.create_session("l", "go")
        with pytest.raises(wg.StepLimitExceeded):
            await runner.run_until_complete("l", max_steps=4)
        assert (await runner.get_state("l")).extra == {"n": 4}
        assert bus.ends() == ["session=l status=error step=4"]
        assert (await runner.run_until_complete("l")).extra == {"n": 10}


async def test_a_paused_session_returns_its_state_with_an_interrupted_stream_end() -> None:
    bus = Collector()
    async with wg.AppRunner(asking_app(), "memory", event_bus=bus) as runner:
        await runner.create_session("q", "hi")
        first = await runner.run_until_complete("q")
        again = await runner.run_until_complete("q")
        assert again == first
        assert bus.ends() == ["session=q status=interrupted step=2"] * 2


async def test_update_state_is_visible_in_history_and_state_at(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'e.db'}"
    async with wg.AppRunner(chain_app("a"), "sqlite", db_url=url) as runner:
        await runner.create_session("e", "hi")
        await runner.update_state("e", wg.NodePartial(extra={"note": "x"}))
        (before_edit, edit) = await runner.history("e")
        assert (edit.step, edit.ran_nodes, edit.updated_channels) == (1, (), ("extra",))
        assert before_edit.step == 0
        assert (await runner.state_at("e", 1)).extra == {"note": "x"}
        assert (await runner.run_until_complete("e")).extra == {"note": "x", "a": 1}


async def test_pause_mark_fork_and_start_failure_on_postgres(
    postgres_url: str, postgres_schema: str
) -> None:
    saver = await wg.PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        app = chain_app("a", "b")
        async with wg.AppRunner(app, saver) as runner:
            await runner.create_session("p", "hi")
            paused = await runner.run_step("p", interrupt_before=["a"])
            assert paused.paused is not None
        async with wg.AppRunner(app, saver) as runner:  # a new runner: the pause was taken
            state = await runner.run_until_complete("p", interrupt_before=["a"])
            assert state.extra == {"a": 1, "b": 1}
            await runner.fork("p", 1, "p2")
            assert [h.step for h in await runner.history("p2")] == [0, 1]
        with pytest.raises(wg.RoutingError):
            await start_routed_app(lambda s: "nowhere").invoke(
                "hi", session_id="r", checkpointer=saver
            )
        latest = await saver.load_latest("r")
        assert latest is not None
        assert latest.frontier == (wg.START,)
    finally:
        await saver.close()


async def test_a_second_signal_while_stopping_stops_at_once() -> None:
    """The step in flight is abandoned (not committed) and the stream still ends: stopped."""
    received: list[int] = []
    holder: list[wg.AppRunner] = []
    bus = Collector()

    def previous(signum: int, frame: object) -> None:
        received.append(signum)

    async def on_tick(n: int) -> None:
        if n == 2 and not received and not bus.ends():  # the first time only
            # Signal handlers run as loop callbacks: yield until each one has been handled.
            signal.raise_signal(signal.SIGTERM)
            while not holder[0].stop_requested:  # noqa: ASYNC110
                await asyncio.sleep(0)
            signal.raise_signal(signal.SIGTERM)  # impatient: a second one
            while True:  # noqa: ASYNC110 (busy until stopped at once)
                await asyncio.sleep(0)

    old = signal.signal(signal.SIGTERM, previous)
    try:
        async with wg.AppRunner(looping_app(50, on_tick), "memory", event_bus=bus) as runner:
            holder.append(runner)
            await runner.create_session("s", "go")
            with runner.handle_signals([signal.SIGTERM]):
                result = await runner.drive("s")
            assert (result.status, result.step, result.state.extra) == ("stopped", 1, {"n": 1})
            assert bus.ends() == ["session=s status=stopped step=1"]
            assert received == []  # neither signal reached the previous handler
            assert signal.getsignal(signal.SIGTERM) is previous
            assert not runner.stop_requested  # spent: the session continues when run again
            assert (await runner.run_until_complete("s")).extra == {"n": 50}
    finally:
        signal.signal(signal.SIGTERM, old)


async def test_concurrent_opens_of_one_session_share_one_executor(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'c.db'}"
    app = chain_app("a", "b", "c")
    async with wg.AppRunner(app, "sqlite", db_url=url) as runner:
        inits = await asyncio.gather(*(runner.create_session("one", "hi") for _ in range(5)))
        assert sorted(init.resumed for init in inits) == [False, True, True, True, True]
        states = await asyncio.gather(*(runner.run_until_complete("one") for _ in range(3)))
        assert all(state.extra == {"a": 1, "b": 1, "c": 1} for state in states)
        assert [h.step for h in await runner.history("one")] == [0, 1, 2, 3]
        await runner.create_session("two", "hi")
    async with wg.AppRunner(app, "sqlite", db_url=url) as runner:  # "two" is loaded once
        results = await asyncio.gather(runner.run_step("two"), runner.run_step("two"))
        assert sorted(r.report.step for r in results if r.report) == [1, 2]


async def test_the_runner_resolves_urls_like_weavegraph_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    monkeypatch.delenv("SQLITE_DB_NAME", raising=False)
    (tmp_path / ".env").write_text("WEAVEGRAPH_SQLITE_URL=sqlite://from-dotenv.db\n")
    async with wg.AppRunner(chain_app("a"), wg.CheckpointerType.SQLite, db_url="x.db") as runner:
        await runner.create_session("env", "hi")
    assert (tmp_path / "from-dotenv.db").exists()
    assert not (tmp_path / "x.db").exists()
    async with wg.AppRunner(chain_app("a"), wg.CheckpointerType.InMemory) as runner:
        assert isinstance(runner.checkpointer, wg.InMemoryCheckpointer)


class _BaseDeleted:
    """A real SQLite checkpointer that cannot rebuild one listed step, as after a raw DELETE of
    the checkpoint its ``extra`` delta builds on (the SQLite backend's known 30-day-DELETE gap)."""

    def __init__(self, inner: Any, lost_step: int) -> None:
        self._inner = inner
        self._lost_step = lost_step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def load(self, session_id: str, step: int) -> Any:
        if step == self._lost_step:
            return None
        return await self._inner.load(session_id, step)


async def test_state_at_tells_a_step_that_cannot_be_rebuilt_from_one_that_never_was(
    tmp_path: Path,
) -> None:
    from weavegraph.checkpoint.sqlite import SQLiteCheckpointer

    inner = await SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'w.db'}")
    checkpointer = _BaseDeleted(inner, lost_step=1)
    async with wg.AppRunner(chain_app("a", "b"), checkpointer) as runner:  # type: ignore[arg-type]
        await runner.create_session("s", "hi")
        await runner.run_until_complete("s")
        assert 1 in [info.step for info in await runner.history("s")]
        with pytest.raises(wg.SessionError, match="cannot be rebuilt") as lost:
            await runner.state_at("s", 1)
        assert "no step" not in str(lost.value)
        with pytest.raises(wg.SessionError, match="cannot be rebuilt"):
            await runner.fork("s", 1, "s2")
        with pytest.raises(wg.SessionError, match="has no step 9"):
            await runner.state_at("s", 9)
        with pytest.raises(wg.SessionNotFound):
            await runner.state_at("nobody", 1)
    await inner.close()


async def test_a_stored_session_whose_next_nodes_are_not_in_the_graph_is_refused_at_load(
    tmp_path: Path,
) -> None:
    from weavegraph.errors import SessionGraphMismatch

    url = f"sqlite://{tmp_path / 'w.db'}"
    async with wg.AppRunner(chain_app("a", "other"), "sqlite", db_url=url) as runner:
        await runner.create_session("s", "hi")
        await runner.run_step("s")  # the frontier is now ("other",)
    async with wg.AppRunner(chain_app("a", "b"), "sqlite", db_url=url) as runner:
        with pytest.raises(SessionGraphMismatch, match="'other'") as raised:
            await runner.create_session("s")
        assert isinstance(raised.value, wg.SessionError)
        assert raised.value.missing == ("other",)
        assert "graph that created it" in raised.value.help
        with pytest.raises(SessionGraphMismatch):
            await runner.run_step("s")
        assert [info.step for info in await runner.history("s")] == [0, 1]  # nothing written


async def test_completed_sessions_leave_the_runners_memory_and_load_again(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'done.db'}"
    async with wg.AppRunner(chain_app("a", "b"), "sqlite", db_url=url) as runner:
        for i in range(20):
            await runner.create_session(f"s{i}")
            await runner.run_until_complete(f"s{i}")
        assert runner._live == {}  # pyright: ignore[reportPrivateUsage]  # a server stays small
        assert runner._ended == {}  # pyright: ignore[reportPrivateUsage]
        assert (await runner.session_info("s7")).status == "completed"
        again = await runner.create_session("s3")
        assert (again.resumed, again.step) == (True, 2)
        state = await runner.run_until_complete("s3")  # nothing left to run
        assert state.extra == {"a": 1, "b": 1}


async def test_a_runner_without_autosave_keeps_its_completed_sessions() -> None:
    async with wg.AppRunner(chain_app("a"), "memory", autosave=False) as runner:
        await runner.create_session("only-here")
        await runner.run_until_complete("only-here")
        state = await runner.run_until_complete("only-here")
        assert state.extra == {"a": 1}


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
async def test_creating_a_stored_session_resumes_it_and_writes_and_emits_nothing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Another runner's create_session of a stored session (memory, SQLite, PostgreSQL): it
    resumes it, and writes and emits nothing."""
    saver: Any
    if backend == "postgres":
        url, schema = (
            request.getfixturevalue("postgres_url"),
            request.getfixturevalue("postgres_schema"),
        )
        saver = await wg.PostgresCheckpointer.connect(url, schema=schema)
    elif backend == "sqlite":
        saver = await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 's.db'}")
    else:
        saver = wg.InMemoryCheckpointer()
    app = chain_app("a", "b", "c")
    try:
        async with wg.AppRunner(app, saver) as first:
            assert (await first.create_session("s", "hi")).resumed is False
            await first.run_step("s")
            stored = await first.history("s")
        bus = Collector()
        async with wg.AppRunner(app, saver, event_bus=bus) as second:
            init = await second.create_session("s", "other")
            assert (init.resumed, init.step) == (True, 1)
            assert await second.history("s") == stored  # nothing written
            assert bus.events == []
            assert (await second.get_state("s")).messages[0].content == "hi"
            state = await second.run_until_complete("s")
            assert state.extra == {"a": 1, "b": 1, "c": 1}
            assert (await second.history("s"))[-1].step == 3
            assert (await second.create_session("t", "new")).resumed is False
    finally:
        if hasattr(saver, "close"):
            await saver.close()
