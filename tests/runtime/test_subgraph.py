"""Subgraphs: a compiled graph as a node, run as part of its parent's session (SPEC §2.6)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import weavegraph as wg
from weavegraph.checkpoint import Checkpoint
from weavegraph.events.model import STREAM_END_SCOPE
from weavegraph.runtime.subgraph import what_to_do

SCHEMA = json.loads(
    (Path(wg.__file__).parent / "events" / "event.schema.json").read_text(encoding="utf-8")
)


def chain(*nodes: tuple[str, Any]) -> wg.App:
    """START -> each node in turn -> END."""
    builder = wg.GraphBuilder()
    previous = wg.START
    for node_id, node in nodes:
        builder.add_node(node_id, node).add_edge(previous, node_id)
        previous = node_id
    return builder.add_edge(previous, wg.END).compile()


def counting(calls: Counter[str], name: str, **extra: Any) -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls[name] += 1
        ctx.emit("work", f"{name} ran")
        return wg.NodePartial(extra={name: calls[name], **extra})

    return node


def asking(calls: Counter[str], name: str) -> Any:
    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls[name] += 1
        answer = ctx.interrupt({"question": f"{name}?"})
        return wg.NodePartial(extra={name: answer})

    return node


# --- a child as a node -------------------------------------------------------------------------


async def test_an_app_is_a_node_and_its_changes_become_the_partial() -> None:
    async def search(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(
            messages=[wg.Message.assistant(f"notes on {snapshot.extra['topic']}")],
            extra={"found": True, "topic": snapshot.extra["topic"]},
        )

    parent = chain(("research", chain(("search", search))))
    start = wg.VersionedState.builder().with_user_message("hi").with_extra("topic", "x").build()
    final = await parent.invoke(start)
    assert [m.content for m in final.messages] == ["hi", "notes on x"]
    assert dict(final.extra) == {"topic": "x", "found": True}


async def test_subgraph_maps_the_state_in_and_out() -> None:
    async def double(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(extra={"n": snapshot.extra["n"] * 2})

    child = chain(("double", double))
    sub = wg.Subgraph(
        child,
        input=lambda parent: wg.VersionedState(extra={"n": parent.extra["value"]}),
        output=lambda final: wg.NodePartial(extra={"doubled": final.extra["n"]}),
    )
    parent = chain(("math", sub))
    final = await parent.invoke(wg.VersionedState(extra={"value": 21}))
    assert dict(final.extra) == {"value": 21, "doubled": 42}


async def test_a_str_input_is_one_user_message_and_none_output_writes_nothing() -> None:
    seen: list[str] = []

    async def read(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        seen.append(snapshot.messages[-1].content)

    sub = wg.Subgraph(chain(("read", read)), input=lambda _: "hello", output=lambda _: None)
    final = await chain(("child", sub)).invoke(wg.VersionedState(extra={"k": 1}))
    assert seen == ["hello"]
    assert dict(final.extra) == {"k": 1}


async def test_bad_mappings_and_ids_are_refused_clearly() -> None:
    child = chain(("a", counting(Counter(), "a")))
    with pytest.raises(TypeError, match="compiled graph"):
        wg.Subgraph(wg.GraphBuilder())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="input must be a function"):
        wg.Subgraph(child, input=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not contain '/'"):
        wg.GraphBuilder().add_node("a/b", child)
    bad = wg.Subgraph(child, input=lambda _: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(wg.NodeRunError, match="must return a VersionedState or a str"):
        await chain(("child", bad)).invoke(wg.VersionedState())
    worse = wg.Subgraph(child, output=lambda _: {"a": 1})  # type: ignore[arg-type,return-value]
    with pytest.raises(wg.NodeRunError, match="must return a NodePartial or None"):
        await chain(("child", worse)).invoke(wg.VersionedState())


# --- events --------------------------------------------------------------------------------------


async def test_child_events_reach_the_parent_with_their_namespace() -> None:
    calls: Counter[str] = Counter()
    inner = chain(("search", counting(calls, "search")))
    middle = chain(("deep", inner))
    parent = chain(("before", counting(calls, "before")), ("research", middle))
    _, stream = await parent.invoke_with_channel(wg.VersionedState(), lifecycle=True)
    events = [event async for event in stream]
    assert [e.seq for e in events] == list(range(len(events)))
    for event in events:
        jsonschema.validate(event.to_json_value(), SCHEMA)
    work = {e.message: e.namespace for e in events if e.scope == "work"}
    assert work == {"before ran": None, "search ran": "research/deep"}
    assert "namespace" not in events[0].to_json_value()
    nested = next(e for e in events if e.message == "search ran").to_json_value()
    assert nested["namespace"] == "research/deep"
    assert wg.Event.from_json_value(nested).namespace == "research/deep"
    # One stream end, the root's: a child's run ends no stream of its own.
    ends = [e for e in events if e.scope in (STREAM_END_SCOPE, "run_end")]
    assert [(e.scope, e.namespace) for e in ends] == [("run_end", None), (STREAM_END_SCOPE, None)]
    assert {e.namespace for e in events if e.scope == "step_start"} == {
        None,
        "research",
        "research/deep",
    }


# --- checkpoints ---------------------------------------------------------------------------------


async def test_child_steps_are_checkpointed_under_the_parent_session() -> None:
    calls: Counter[str] = Counter()
    child = chain(("a", counting(calls, "a")), ("b", counting(calls, "b")))
    parent = chain(("research", child))
    checkpointer = wg.InMemoryCheckpointer()
    await parent.invoke(wg.VersionedState(), session_id="s1", checkpointer=checkpointer)
    assert [info.session_id for info in await checkpointer.list_sessions()] == ["s1"]
    latest = await checkpointer.load_latest("s1", namespace="research")
    assert latest is not None
    assert (latest.namespace, latest.step, latest.frontier) == ("research", 2, ())
    assert dict(latest.state.extra) == {"a": 1, "b": 1}
    assert await checkpointer.delete_session("s1") is True
    assert await checkpointer.load_latest("s1", namespace="research") is None


async def test_a_child_run_again_starts_afresh_and_numbers_on(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    child = chain(("count", counting(calls, "count")))

    def again(snapshot: wg.StateSnapshot) -> str:
        return "loop" if snapshot.extra["count"] < 3 else wg.END

    builder = wg.GraphBuilder().add_node("loop", child).add_edge(wg.START, "loop")
    parent = builder.add_conditional_edge("loop", again, targets=["loop", wg.END]).compile()
    async with wg.AppRunner(parent, "sqlite", db_url=f"sqlite://{tmp_path}/loop.db") as runner:
        await runner.create_session("loops", wg.VersionedState(extra={"count": 0}))
        final = await runner.run_until_complete("loops")
        history = await runner.checkpointer.history("loops", namespace="loop")
    assert final.extra["count"] == 3
    assert calls["count"] == 3
    # Each run: its initial state, then its step; numbered on across runs.
    assert [info.step for info in history] == [0, 1, 2, 3, 4, 5]
    assert [info.ran_nodes for info in history][1::2] == [("count",)] * 3


async def test_a_failed_child_continues_from_its_failed_step_on_retry() -> None:
    calls: Counter[str] = Counter()

    async def flaky(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("first time fails")
        return wg.NodePartial(extra={"flaky": "ok"})

    child = chain(("prep", counting(calls, "prep")), ("flaky", flaky))
    builder = wg.GraphBuilder().add_edge(wg.START, "research").add_edge("research", wg.END)
    builder.add_node("research", child, retry=wg.RetryPolicy(max_attempts=2, initial_delay=0))
    final = await builder.compile().invoke(
        wg.VersionedState(), checkpointer=wg.InMemoryCheckpointer()
    )
    assert dict(final.extra) == {"prep": 1, "flaky": "ok"}
    assert calls == Counter({"prep": 1, "flaky": 2})  # prep is not run again


async def test_a_child_failure_fails_the_parent_node() -> None:
    async def broken(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        raise ValueError("bad input")

    parent = chain(("research", chain(("broken", broken))))
    with pytest.raises(wg.NodeRunError, match="research") as caught:
        await parent.invoke(wg.VersionedState())
    assert "bad input" in str(caught.value)


# --- interrupts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_child_interrupt_pauses_the_session_and_resume_continues_it(
    tmp_path: Path, store: str
) -> None:
    calls: Counter[str] = Counter()
    child = chain(("prep", counting(calls, "prep")), ("ask", asking(calls, "ask")))
    parent = chain(("research", child), ("after", counting(calls, "after")))
    sink = wg.MemorySink()
    bus = wg.EventBus(sinks=[sink])
    url = f"sqlite://{tmp_path}/hitl.db"
    async with wg.AppRunner(parent, store, db_url=url, event_bus=bus) as runner:
        await runner.create_session("trip", wg.VersionedState())
        paused = await runner.run_until_complete("trip")
        assert "ask" not in paused.extra
        info = await runner.session_info("trip")
        assert info.status == "interrupted"
        assert info.interrupt == wg.PendingInterrupt(
            id="1:research/ask", node="ask", namespace="research", value={"question": "ask?"}
        )
        assert [s.session_id for s in await runner.list_sessions()] == ["trip"]
        final = await runner.resume("trip", "Lisbon")
        assert (await runner.session_info("trip")).status == "completed"
        await bus.drain()
    assert dict(final.extra) == {"prep": 1, "ask": "Lisbon", "after": 1}
    assert calls == Counter({"prep": 1, "ask": 2, "after": 1})
    events = sink.snapshot()
    (question,) = [e for e in events if e.scope == "interrupt"]
    assert (question.namespace, question.node_id) == ("research", "ask")
    ends = [e.message for e in events if e.scope == STREAM_END_SCOPE]
    assert [m.split()[1] for m in ends] == ["status=interrupted", "status=completed"]


async def test_three_levels_deep_an_interrupt_finds_its_way_back(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    inner = chain(("prep", counting(calls, "prep")), ("ask", asking(calls, "ask")))
    middle = chain(("warm", counting(calls, "warm")), ("inner", inner))
    outer = chain(("middle", middle))
    root = chain(("outer", outer), ("done", counting(calls, "done")))
    async with wg.AppRunner(root, "sqlite", db_url=f"sqlite://{tmp_path}/deep.db") as runner:
        await runner.create_session("deep", wg.VersionedState())
        await runner.run_until_complete("deep")
        pending = (await runner.session_info("deep")).interrupt
        assert pending is not None
        assert (pending.node, pending.namespace) == ("ask", "outer/middle/inner")
        final = await runner.resume("deep", 7)
        namespaces = {
            ns: [i.step for i in await runner.checkpointer.history("deep", namespace=ns)]
            for ns in ("outer", "outer/middle", "outer/middle/inner")
        }
    assert final.extra["ask"] == 7
    assert calls == Counter({"prep": 1, "warm": 1, "ask": 2, "done": 1})
    assert all(steps for steps in namespaces.values()), namespaces


async def test_invoke_raises_interrupted_naming_the_childs_question() -> None:
    parent = chain(("research", chain(("ask", asking(Counter(), "ask")))))
    with pytest.raises(wg.Interrupted) as caught:
        await parent.invoke(wg.VersionedState())
    assert caught.value.interrupt.namespace == "research"
    assert caught.value.interrupt.node == "ask"


async def test_resume_with_update_still_answers_the_child() -> None:
    calls: Counter[str] = Counter()
    parent = chain(("research", chain(("ask", asking(calls, "ask")))))
    async with wg.AppRunner(parent, "memory") as runner:
        await runner.create_session("u", wg.VersionedState())
        await runner.run_until_complete("u")
        final = await runner.resume("u", "yes", update=wg.NodePartial(extra={"note": "edited"}))
    assert dict(final.extra) == {"note": "edited", "ask": "yes"}


# --- deciding what a child run does (pure) -----------------------------------------------------


def _latest(frontier: tuple[str, ...], parent_step: int, interrupt: bool = False) -> Checkpoint:
    """A child's latest checkpoint, run in ``parent_step``."""
    cursor: dict[str, Any] = {"parent_step": parent_step}
    if interrupt:
        cursor["interrupt"] = {"node": "ask", "value": 1}
    return Checkpoint(
        session_id="s",
        step=3,
        state=wg.VersionedState(),
        frontier=frontier,
        cursor=cursor,
        namespace="research",
    )


def test_what_a_child_run_does_with_what_it_finds() -> None:
    running, done = ("b",), ()
    # unfinished, run after the parent's last merged step (a crash, a failure, a pause): continue
    assert what_to_do(_latest(running, 5), settled=4, answering=False) == "continue"
    # answering the child's question, even after the parent recorded an edit: continue
    waiting = _latest(running, 5, interrupt=True)
    assert what_to_do(waiting, settled=6, answering=True) == "continue"
    # an old, abandoned run (the parent merged steps since): start afresh
    assert what_to_do(_latest(running, 2), settled=7, answering=False) == "new"
    # finished but never merged (the parent crashed, or a sibling failed or paused): use it
    assert what_to_do(_latest(done, 5), settled=4, answering=False) == "finished"
    assert what_to_do(_latest(done, 5), settled=4, answering=True) == "finished"
    # finished and merged by the parent's step: a new run
    assert what_to_do(_latest(done, 5), settled=5, answering=False) == "new"


async def test_parallel_children_that_both_ask_are_answered_in_turn() -> None:
    calls: Counter[str] = Counter()
    left = chain(("prep", counting(calls, "left_prep")), ("ask", asking(calls, "left")))
    right = chain(("prep", counting(calls, "right_prep")), ("ask", asking(calls, "right")))
    builder = wg.GraphBuilder().add_node("left", left).add_node("right", right)
    builder.add_edge(wg.START, "left").add_edge(wg.START, "right")
    parent = builder.add_edge("left", wg.END).add_edge("right", wg.END).compile()
    async with wg.AppRunner(parent, "memory") as runner:
        first = await runner.drive("both", wg.VersionedState())
        assert first.paused is not None
        assert first.paused.asking == "left/ask"
        second = await runner.drive("both", answer="L")
        assert second.paused is not None
        assert second.paused.asking == "right/ask"
        done = await runner.drive("both", answer="R")
    assert done.status == "completed"
    assert {k: done.state.extra[k] for k in ("left", "right")} == {"left": "L", "right": "R"}
    # Each child's first node ran once; each question was asked once and answered once.
    assert calls == Counter(left_prep=1, right_prep=1, left=2, right=2)


async def test_a_finished_child_is_not_run_again_when_a_sibling_fails() -> None:
    calls: Counter[str] = Counter()

    async def flaky(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("not yet")
        return wg.NodePartial(extra={"flaky": "ok"})

    child = chain(("work", counting(calls, "work")))
    builder = wg.GraphBuilder().add_node("child", child).add_node("flaky", flaky)
    builder.add_edge(wg.START, "child").add_edge(wg.START, "flaky")
    parent = builder.add_edge("child", wg.END).add_edge("flaky", wg.END).compile()
    async with wg.AppRunner(parent, "memory") as runner:
        await runner.create_session("f", wg.VersionedState())
        with pytest.raises(wg.NodeRunError):
            await runner.run_until_complete("f")
        final = await runner.run_until_complete("f")
    assert (final.extra["work"], final.extra["flaky"]) == (1, "ok")
    assert calls == Counter(work=1, flaky=2)


async def test_drive_reports_the_pause_with_its_namespace() -> None:
    parent = chain(("research", chain(("ask", asking(Counter(), "ask")))))
    async with wg.AppRunner(parent, "memory") as runner:
        result = await runner.drive("d", wg.VersionedState())
        assert result.status == "interrupted"
        assert result.paused is not None
        assert (result.paused.nodes, result.paused.namespace) == (("ask",), "research")
        assert result.paused.asking == "research/ask"
        again = await runner.drive("d")  # still waiting: the stored pause says the same
        assert again.paused is not None
        assert again.paused.asking == "research/ask"
        done = await runner.drive("d", answer="ok")
        assert (done.status, dict(done.state.extra)) == ("completed", {"ask": "ok"})


# --- Send tasks of a subgraph node -------------------------------------------------------------


def _fan_out_to(child: wg.App, topics: list[str]) -> wg.App:
    def fan_out(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("research", {"topic": topic}) for topic in topics]

    builder = wg.GraphBuilder().with_extra_reducer("notes", wg.reducers.append)
    builder.add_node("research", child).add_edge("research", wg.END)
    return builder.add_conditional_edge(wg.START, fan_out, targets=["research"]).compile()


async def test_each_send_task_of_a_subgraph_runs_its_own_child() -> None:
    async def note(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("note", snapshot.extra["topic"])
        return wg.NodePartial(extra={"notes": f"on {snapshot.extra['topic']}"})

    app = _fan_out_to(chain(("note", note)), ["a", "b", "c"])
    checkpointer = wg.InMemoryCheckpointer()
    bus_sink = wg.MemorySink()
    bus = wg.EventBus(sinks=[bus_sink])
    async with bus:
        final = await app.invoke(
            wg.VersionedState(), session_id="fan", checkpointer=checkpointer, event_bus=bus
        )
    # Each task's child got its own topic; the per-task input is not written back.
    assert final.extra["notes"] == ["on a", "on b", "on c"]
    assert "topic" not in final.extra
    for task, topic in enumerate("abc"):
        latest = await checkpointer.load_latest("fan", namespace=f"research:{task}")
        assert latest is not None
        assert latest.state.extra["topic"] == topic
    notes = {e.message: e.namespace for e in bus_sink.snapshot() if e.scope == "note"}
    assert notes == {"a": "research:0", "b": "research:1", "c": "research:2"}


async def test_a_send_tasks_child_question_is_answered_in_that_task() -> None:
    async def ask(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        topic = snapshot.extra["topic"]
        verdict = ctx.interrupt({"approve": topic}) if topic == "b" else "auto"
        return wg.NodePartial(extra={"notes": f"{topic}: {verdict}"})

    app = _fan_out_to(chain(("ask", ask)), ["a", "b", "c"])
    async with wg.AppRunner(app, "memory") as runner:
        first = await runner.drive("s", wg.VersionedState())
        assert first.paused is not None
        assert (first.paused.asking, first.paused.value) == ("research:1/ask", {"approve": "b"})
        done = await runner.drive("s", answer="yes")
    assert done.status == "completed"
    assert done.state.extra["notes"] == ["a: auto", "b: yes", "c: auto"]


async def test_a_send_to_a_subgraph_needs_a_mapping_input() -> None:
    def send_text(snapshot: wg.StateSnapshot) -> list[wg.Send]:
        return [wg.Send("research", "not a mapping")]

    builder = wg.GraphBuilder().add_node("research", chain(("a", counting(Counter(), "a"))))
    builder.add_edge("research", wg.END)
    app = builder.add_conditional_edge(wg.START, send_text, targets=["research"]).compile()
    with pytest.raises(wg.NodeRunError, match="needs a mapping of extra keys"):
        await app.invoke(wg.VersionedState())
