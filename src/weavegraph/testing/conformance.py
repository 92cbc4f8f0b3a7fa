"""The checkpointer conformance suite: every backend, built-in or yours, passes the same checks.

Each check is an async function ``check(checkpointer, capabilities)`` that raises AssertionError on
a violation. Run them with pytest, one test per check::

    from weavegraph.testing.conformance import CHECKS, Capabilities

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    async def test_my_backend(check, my_checkpointer):
        await check(my_checkpointer, Capabilities(keeps_history=True))

or all at once with :func:`run_conformance`. Checks use fresh random session ids, so they tolerate a
database that already holds other sessions (but a fresh backend per check isolates failures best).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ..checkpoint.base import Checkpoint, Checkpointer
from ..errors import InvalidSessionId
from ..state import ErrorEvent, FrozenDict, Message, ToolCall, VersionedState
from ._checks import Capabilities, Check, assert_same, make_checkpoint, new_sid
from ._fence_checks import FENCE_CHECKS
from ._task_checks import TASK_CHECKS

__all__ = [
    "CHECKS",
    "Capabilities",
    "Check",
    "evolving_extra",
    "evolving_history",
    "make_checkpoint",
    "run_conformance",
]


def evolving_extra(step: int) -> dict[str, Any]:
    """An ``extra`` for ``step`` that exercises delta storage: large enough to be logged, keys that
    change, pile up and disappear, a big key now and then removed, and a small tail of steps."""
    extra: dict[str, Any] = {"big": "b" * 600, "counter": step // 2}
    for key in range(step):
        extra[f"k{key}"] = "v" * 100 + str(key)
    if step % 7 == 3:
        extra.pop("big")
    if step > 50:
        extra = {"small": step // 3}
    return extra


def evolving_history(session_id: str, steps: int = 60) -> list[Checkpoint]:
    """``steps`` checkpoints of one session as a runner would save them: messages appended on two
    steps of three (sharing the previous items) and :func:`evolving_extra` as ``extra``."""
    messages: tuple[Message, ...] = ()
    saved: list[Checkpoint] = []
    for step in range(steps):
        if step % 3 != 2:
            messages = (*messages, Message.assistant(f"{session_id}{step}"))
        saved.append(
            make_checkpoint(session_id, step, messages=messages, extra=evolving_extra(step))
        )
        messages = saved[-1].state.messages
    return saved


# --- the checks ------------------------------------------------------------------------------


async def check_unknown_session(cp: Checkpointer, caps: Capabilities) -> None:
    """Reading a session that does not exist gives empty answers, never an error."""
    sid = new_sid("unknown")
    assert await cp.load_latest(sid) is None
    assert await cp.load(sid, 0) is None
    assert await cp.history(sid) == []
    assert await cp.load_events(sid) == []
    assert await cp.delete_session(sid) is False
    assert sid not in {info.session_id for info in await cp.list_sessions()}


async def check_roundtrip_every_field(cp: Checkpointer, caps: Capabilities) -> None:
    """Every field of a checkpoint, including nested JSON and message metadata, survives."""
    sid = new_sid("fields")
    messages = (
        Message.system("be brief"),
        Message.user("héllo \u2603 \x00 end"),
        Message("assistant", "hi", id="m-1", name="bot", metadata={"tokens": 3, "k": [1, None]}),
        Message("critic", "custom role", metadata={"nested": {"deep": {"x": 1.25}}}),
    )
    extra: dict[str, Any] = {
        "nested": {"list": [1, 2.5, "x", None, True, {"y": []}], "empty": {}},
        "null_inside": {"a": None},
        "big": 2**62,
        "negative": -1e-300,
        "unicode": "\u00e9\U0001f600",
    }
    errors = (
        ErrorEvent(message="boom", node_id="a", step=1, error_type="ValueError", traceback="tb"),
        ErrorEvent(message="soft", scope="router", tags=("x", "y"), context={"why": {"n": 1}}),
    )
    saved = make_checkpoint(
        sid, 3, messages=messages, extra=extra, errors=errors, frontier=("b", "c", "End")
    )
    await cp.save(saved)
    assert_same(await cp.load_latest(sid), saved)
    assert_same(await cp.load(sid, 3), saved)
    loaded = await cp.load_latest(sid)
    assert loaded is not None
    assert loaded.state.messages[2].metadata == {"tokens": 3, "k": [1, None]}
    assert isinstance(loaded.state.extra, FrozenDict), "extra must come back frozen"


async def check_roundtrip_tool_calls(cp: Checkpointer, caps: Capabilities) -> None:
    """An agent's conversation survives: tool calls with nested arguments and tool results."""
    sid = new_sid("tools")
    calls = (
        ToolCall("call_1", "search", {"query": "barriers", "filters": {"year": [2010, None]}}),
        ToolCall("call_2", "clock", {}),
    )
    messages = (
        Message.user("look it up"),
        Message.assistant("Checking.", tool_calls=calls),
        Message.tool("found 3", "call_1", name="search"),
        Message("tool", "Error: boom", tool_call_id="call_2", metadata={"is_error": True}),
    )
    saved = make_checkpoint(sid, 2, messages=messages)
    await cp.save(saved)
    loaded = await cp.load_latest(sid)
    assert_same(loaded, saved)
    assert loaded is not None
    assert loaded.state.messages[1].tool_calls == calls
    assert loaded.state.messages[2].tool_call_id == "call_1"


async def check_empty_initial_state(cp: Checkpointer, caps: Capabilities) -> None:
    """Step 0 with empty channels and an empty cursor round-trips."""
    sid = new_sid("empty")
    saved = Checkpoint(session_id=sid, step=0, state=VersionedState(), frontier=())
    await cp.save(saved)
    assert_same(await cp.load_latest(sid), saved)


async def check_load_each_step(cp: Checkpointer, caps: Capabilities) -> None:
    """``load(step)`` returns that step (SQL) or only the latest (memory)."""
    sid = new_sid("steps")
    saved = [
        make_checkpoint(sid, step, messages=[Message.user(f"m{i}") for i in range(step + 1)])
        for step in range(4)
    ]
    for checkpoint in saved:
        await cp.save(checkpoint)
    assert_same(await cp.load_latest(sid), saved[-1])
    for checkpoint in saved[:-1]:
        loaded = await cp.load(sid, checkpoint.step)
        if caps.keeps_history:
            assert_same(loaded, checkpoint)
        else:
            assert loaded is None, "a backend without history returned an older step"
    assert_same(await cp.load(sid, 3), saved[-1])
    assert await cp.load(sid, 99) is None


async def check_history(cp: Checkpointer, caps: Capabilities) -> None:
    """History lists steps oldest first with what ran, was skipped and was updated."""
    sid = new_sid("history")
    saved = [make_checkpoint(sid, step) for step in range(5)]
    for checkpoint in saved:
        await cp.save(checkpoint)
    history = await cp.history(sid)
    expected = saved if caps.keeps_history else saved[-1:]
    assert [info.step for info in history] == [c.step for c in expected]
    for info, checkpoint in zip(history, expected, strict=True):
        assert info.ran_nodes == checkpoint.ran_nodes
        assert info.skipped_nodes == checkpoint.skipped_nodes
        assert info.updated_channels == checkpoint.updated_channels
        assert abs(info.created_at - checkpoint.created_at) < timedelta(seconds=1)


async def check_list_sessions(cp: Checkpointer, caps: Capabilities) -> None:
    """Every saved session is listed once, with its latest step and sane timestamps."""
    sids = [new_sid(f"list{i}") for i in range(3)]
    for index, sid in enumerate(sids):
        for step in range(index + 1):
            await cp.save(make_checkpoint(sid, step))
    listed = {info.session_id: info for info in await cp.list_sessions() if info.session_id in sids}
    assert sorted(listed) == sorted(sids)
    for index, sid in enumerate(sids):
        info = listed[sid]
        assert info.latest_step == index
        assert info.created_at.tzinfo is not None
        assert info.updated_at.tzinfo is not None
        assert info.created_at <= info.updated_at + timedelta(seconds=1)


async def check_delete_session(cp: Checkpointer, caps: Capabilities) -> None:
    """Deleting removes a session's checkpoints, history and events, and nothing else."""
    doomed, kept = new_sid("doomed"), new_sid("kept")
    for sid in (doomed, kept):
        for step in range(3):
            await cp.save(make_checkpoint(sid, step, messages=[Message.user(sid)]))
        await cp.append_events(sid, [{"seq": 0, "message": sid}])
    assert await cp.delete_session(doomed) is True
    assert await cp.load_latest(doomed) is None
    assert await cp.load(doomed, 1) is None
    assert await cp.history(doomed) == []
    assert await cp.load_events(doomed) == []
    assert doomed not in {info.session_id for info in await cp.list_sessions()}
    assert await cp.delete_session(doomed) is False
    latest = await cp.load_latest(kept)
    assert latest is not None
    assert latest.step == 2
    assert await cp.load_events(kept) == [{"seq": 0, "message": kept}]
    # A deleted session id can be used again from scratch.
    fresh = make_checkpoint(doomed, 0)
    await cp.save(fresh)
    assert_same(await cp.load_latest(doomed), fresh)


async def check_latest_is_monotonic(cp: Checkpointer, caps: Capabilities) -> None:
    """Saving an older step after a newer one never moves the latest pointer back."""
    sid = new_sid("monotonic")
    one, three, two = (make_checkpoint(sid, s, extra={"s": s}) for s in (1, 3, 2))
    for checkpoint in (one, three, two):
        await cp.save(checkpoint)
    assert_same(await cp.load_latest(sid), three)
    listed = [info for info in await cp.list_sessions() if info.session_id == sid]
    assert [info.latest_step for info in listed] == [3]
    if caps.keeps_history:
        assert_same(await cp.load(sid, 2), two)
        assert [info.step for info in await cp.history(sid)] == [1, 2, 3]


async def check_resave_latest_replaces(cp: Checkpointer, caps: Capabilities) -> None:
    """Saving the latest step again replaces it (a retried step is committed once)."""
    sid = new_sid("resave")
    await cp.save(make_checkpoint(sid, 0))
    await cp.save(make_checkpoint(sid, 1, extra={"try": 1}))
    second = make_checkpoint(sid, 1, extra={"try": 2}, messages=[Message.user("again")])
    await cp.save(second)
    assert_same(await cp.load_latest(sid), second)
    assert_same(await cp.load(sid, 1), second)
    if caps.keeps_history:
        assert [info.step for info in await cp.history(sid)] == [0, 1]


async def check_state_evolution(cp: Checkpointer, caps: Capabilities) -> None:
    """Appends, rewrites and removals in every channel: each step loads exactly as saved.

    This is what catches a backend storing deltas wrongly: messages appended then replaced by a
    shorter list, extra keys changed, removed and re-added, errors appended.
    """
    sid = new_sid("evolution")
    messages: list[Message] = []
    extra: dict[str, Any] = {}
    errors: list[ErrorEvent] = []
    saved: list[Checkpoint] = []
    for step in range(12):
        messages = [*messages, Message.assistant(f"step {step}")]
        if step == 5:
            messages = [Message.system("rewritten"), *messages[3:]]
        if step == 8:
            messages = []
        extra = {**extra, f"k{step % 4}": {"step": step, "list": list(range(step))}}
        if step % 3 == 2:
            extra.pop("k0", None)
        if step == 9:
            extra = {}
        if step % 4 == 1:
            errors = [*errors, ErrorEvent(message=f"e{step}", step=step)]
        if step == 10:
            errors = errors[1:]
        checkpoint = make_checkpoint(sid, step, messages=messages, extra=extra, errors=errors)
        # As a runner does: the next state reuses the previous state's (frozen) items.
        messages = list(checkpoint.state.messages)
        errors = list(checkpoint.state.errors)
        saved.append(checkpoint)
        await cp.save(checkpoint)
        assert_same(await cp.load_latest(sid), checkpoint)
    for checkpoint in saved if caps.keeps_history else saved[-1:]:
        assert_same(await cp.load(sid, checkpoint.step), checkpoint)


async def check_events(cp: Checkpointer, caps: Capabilities) -> None:
    """Events are stored per session, returned in seq order after ``after_seq``."""
    sid, other = new_sid("events"), new_sid("events-other")
    await cp.append_events(sid, [{"seq": 2, "scope": "b", "metadata": {"n": [1, {"x": None}]}}])
    await cp.append_events(sid, [{"seq": 0, "scope": "a"}, {"seq": 1, "scope": "a2"}])
    await cp.append_events(other, [{"seq": 0, "scope": "other"}])
    await cp.append_events(sid, [])
    events = await cp.load_events(sid)
    assert [event["seq"] for event in events] == [0, 1, 2]
    assert events[2] == {"seq": 2, "scope": "b", "metadata": {"n": [1, {"x": None}]}}
    assert [event["seq"] for event in await cp.load_events(sid, after_seq=0)] == [1, 2]
    assert await cp.load_events(sid, after_seq=2) == []
    assert await cp.load_events(other) == [{"seq": 0, "scope": "other"}]


async def check_concurrent_sessions(cp: Checkpointer, caps: Capabilities) -> None:
    """Many sessions saving at once (one task each) all end with their own latest step."""
    sids = [new_sid(f"conc{i}") for i in range(40)]

    async def run(sid: str) -> None:
        messages: tuple[Message, ...] = ()
        for step in range(8):
            messages = (*messages, Message.assistant(f"{sid}:{step}"))
            await cp.save(make_checkpoint(sid, step, messages=messages, extra={"sid": sid}))
            await cp.append_events(sid, [{"seq": step, "sid": sid}])

    await asyncio.gather(*(run(sid) for sid in sids))
    for sid in sids:
        latest = await cp.load_latest(sid)
        assert latest is not None
        assert latest.step == 7
        assert latest.state.messages[-1].content == f"{sid}:7"
        assert len(latest.state.messages) == 8
        assert latest.state.extra == {"sid": sid}
        assert len(await cp.history(sid)) == (8 if caps.keeps_history else 1)
        assert [e["seq"] for e in await cp.load_events(sid)] == list(range(8))


async def check_concurrent_same_session(cp: Checkpointer, caps: Capabilities) -> None:
    """Steps of one session saved concurrently in any order: the latest is the highest step."""
    sid = new_sid("race")
    saved = [make_checkpoint(sid, step, extra={"s": step}) for step in range(20)]
    await asyncio.gather(*(cp.save(c) for c in reversed(saved)))
    assert_same(await cp.load_latest(sid), saved[-1])
    if caps.keeps_history:
        assert [info.step for info in await cp.history(sid)] == list(range(20))
        assert_same(await cp.load(sid, 7), saved[7])


async def check_subgraph_namespaces(cp: Checkpointer, caps: Capabilities) -> None:
    """A subgraph's checkpoints live in their namespace of the session: each namespace has its
    own steps and latest step, and none of them is listed as a session."""
    sid = new_sid("nested")
    root = [make_checkpoint(sid, step, extra={"root": step}) for step in range(3)]
    child = [
        replace(make_checkpoint(sid, step, extra={"child": step}), namespace="research")
        for step in range(5)
    ]
    deep = [
        replace(make_checkpoint(sid, step, extra={"deep": step}), namespace="research/search")
        for step in range(2)
    ]
    for checkpoint in (*root, *child, *deep):
        await cp.save(checkpoint)
    assert_same(await cp.load_latest(sid), root[-1])
    assert_same(await cp.load_latest(sid, namespace="research"), child[-1])
    assert_same(await cp.load_latest(sid, namespace="research/search"), deep[-1])
    assert await cp.load_latest(sid, namespace="elsewhere") is None
    assert await cp.history(sid, namespace="elsewhere") == []
    listed = [info for info in await cp.list_sessions() if info.session_id.startswith(sid)]
    assert [(info.session_id, info.latest_step) for info in listed] == [(sid, 2)]
    assert all("/" not in info.session_id for info in await cp.list_sessions())
    if caps.keeps_history:
        assert_same(await cp.load(sid, 3, namespace="research"), child[3])
        assert [info.step for info in await cp.history(sid, namespace="research")] == list(range(5))
        assert [info.step for info in await cp.history(sid)] == [0, 1, 2]


async def check_delete_takes_the_subgraphs(cp: Checkpointer, caps: Capabilities) -> None:
    """Deleting a session deletes its subgraphs' checkpoints, and no other session's (not even
    one whose id starts with the deleted one's)."""
    sid = new_sid("parent")
    others = (f"{sid}0", f"{sid}-2", f"{sid}.b")
    for owner in (sid, *others):
        await cp.save(make_checkpoint(owner, 0, messages=[Message.user(owner)]))
        for namespace in ("child", "child/grandchild"):
            saved = make_checkpoint(owner, 1, messages=[Message.user(namespace)])
            await cp.save(replace(saved, namespace=namespace))
    assert await cp.delete_session(sid) is True
    for namespace in ("", "child", "child/grandchild"):
        assert await cp.load_latest(sid, namespace=namespace) is None
        assert await cp.history(sid, namespace=namespace) == []
    for owner in others:
        kept = await cp.load_latest(owner, namespace="child/grandchild")
        assert kept is not None
        assert kept.state.messages == (Message.user("child/grandchild"),)
    fresh = replace(make_checkpoint(sid, 0), namespace="child")  # the id can be used again
    await cp.save(fresh)
    assert_same(await cp.load_latest(sid, namespace="child"), fresh)


async def check_session_ids_with_a_slash_are_refused(cp: Checkpointer, caps: Capabilities) -> None:
    """A ``/`` separates a session id from a subgraph's namespace: no session id has one."""
    sid = new_sid("slash")
    try:
        await cp.save(make_checkpoint(f"{sid}/x", 0))
    except InvalidSessionId:
        pass
    else:
        raise AssertionError("a session id with '/' was accepted")
    assert sid not in {info.session_id.split("/")[0] for info in await cp.list_sessions()}


CHECKS: tuple[Check, ...] = (
    check_unknown_session,
    check_roundtrip_every_field,
    check_roundtrip_tool_calls,
    check_empty_initial_state,
    check_load_each_step,
    check_history,
    check_list_sessions,
    check_delete_session,
    check_latest_is_monotonic,
    check_resave_latest_replaces,
    check_state_evolution,
    check_events,
    check_concurrent_sessions,
    check_concurrent_same_session,
    check_subgraph_namespaces,
    check_delete_takes_the_subgraphs,
    check_session_ids_with_a_slash_are_refused,
    *FENCE_CHECKS,
    *TASK_CHECKS,
)


async def run_conformance(
    factory: Callable[[], AbstractAsyncContextManager[Checkpointer]],
    capabilities: Capabilities | None = None,
) -> None:
    """Run every check, each on a checkpointer from ``factory`` (an async context manager)."""
    for check in CHECKS:
        async with factory() as checkpointer:
            await check(checkpointer, capabilities or Capabilities())
