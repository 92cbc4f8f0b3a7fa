"""Conformance checks for fenced saves and the event log saved with each step.

A save states what it builds on (``builds_on``: -1 a new session, ``k`` the stored latest step);
when the stored session is anything else, nothing is written and ``CheckpointConflict`` is raised.
Events are saved in the same transaction as their step, inserted and never replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..checkpoint.base import Checkpointer
from ..errors import CheckpointConflict, CheckpointError
from ._checks import Capabilities, Check, assert_same, make_checkpoint, new_sid

__all__ = ["FENCE_CHECKS"]

E = TypeVar("E", bound=BaseException)


def _events(seqs: range | list[int], label: str = "e") -> list[dict[str, Any]]:
    return [
        {"seq": seq, "scope": label, "message": f"{label}{seq}", "metadata": {}} for seq in seqs
    ]


async def _raised(attempt: Awaitable[Any], kind: type[E]) -> E | None:
    """The ``kind`` error ``attempt`` raised, None if it succeeded (other errors propagate)."""
    try:
        await attempt
    except kind as exc:
        return exc
    return None


async def _refused(
    sid: str, expected: int | None, stored: int | None, attempt: Awaitable[Any]
) -> CheckpointConflict:
    """The CheckpointConflict ``attempt`` must raise, naming what it expected and found."""
    conflict = await _raised(attempt, CheckpointConflict)
    assert conflict is not None, f"a save of {sid!r} that should conflict was stored"
    assert isinstance(conflict, CheckpointError)
    assert conflict.session_id == sid, conflict
    assert (conflict.expected, conflict.stored) == (expected, stored), conflict
    assert sid in str(conflict)
    return conflict


async def check_fence_new_session(cp: Checkpointer, caps: Capabilities) -> None:
    """``builds_on=-1`` creates a session once; a second creator is refused, nothing changes."""
    sid = new_sid("fence-new")
    first = make_checkpoint(sid, 0, extra={"who": "first"})
    await cp.save(first, builds_on=-1, events=_events([0]))
    second = make_checkpoint(sid, 0, extra={"who": "second"})
    await _refused(sid, -1, 0, cp.save(second, builds_on=-1, events=_events([1])))
    assert_same(await cp.load_latest(sid), first)
    assert [event["seq"] for event in await cp.load_events(sid)] == [0]


async def check_fence_stale_and_future(cp: Checkpointer, caps: Capabilities) -> None:
    """A save building on an older, a future or a missing step is refused; the session stays."""
    sid = new_sid("fence-stale")
    saved = [make_checkpoint(sid, step, extra={"s": step}) for step in range(3)]
    await cp.save(saved[0], builds_on=-1)
    await cp.save(saved[1], builds_on=0)
    await cp.save(saved[2], builds_on=1)
    stale = make_checkpoint(sid, 2, extra={"s": "stale"})
    conflict = await _refused(sid, 1, 2, cp.save(stale, builds_on=1))
    assert "step 1" in str(conflict), conflict
    assert "latest step is 2" in str(conflict), conflict
    await _refused(sid, 5, 2, cp.save(make_checkpoint(sid, 6), builds_on=5))
    await _refused(sid, 0, 2, cp.save(make_checkpoint(sid, 1), builds_on=0))
    assert_same(await cp.load_latest(sid), saved[2])
    assert await cp.load(sid, 6) is None
    if caps.keeps_history:
        assert [info.step for info in await cp.history(sid)] == [0, 1, 2]
        assert_same(await cp.load(sid, 1), saved[1])
    missing = new_sid("fence-missing")
    await _refused(missing, 0, None, cp.save(make_checkpoint(missing, 1), builds_on=0))
    assert await cp.load_latest(missing) is None
    assert missing not in {info.session_id for info in await cp.list_sessions()}


async def check_fence_resave_latest(cp: Checkpointer, caps: Capabilities) -> None:
    """A save of step ``k`` building on ``k`` re-saves the latest step in place (history keeps
    one entry per step); building on ``k`` once ``k+1`` is stored is refused."""
    sid = new_sid("fence-resave")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1)
    await cp.save(make_checkpoint(sid, 1, extra={"try": 1}), builds_on=0)
    again = make_checkpoint(sid, 1, extra={"try": 2})
    await cp.save(again, builds_on=1, events=_events([0]))
    assert_same(await cp.load_latest(sid), again)
    if caps.keeps_history:
        assert [info.step for info in await cp.history(sid)] == [0, 1]
        assert_same(await cp.load(sid, 1), again)
    await cp.save(make_checkpoint(sid, 2), builds_on=1)
    await _refused(sid, 1, 2, cp.save(again, builds_on=1))


async def check_events_saved_with_their_step(cp: Checkpointer, caps: Capabilities) -> None:
    """Events saved with each step come back in seq order, exactly as given."""
    sid = new_sid("step-events")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1, events=_events([0, 1], "s0"))
    await cp.save(make_checkpoint(sid, 1), builds_on=0, events=_events([3, 2], "s1"))
    await cp.save(make_checkpoint(sid, 2), builds_on=1)  # a step that emitted nothing
    await cp.save(make_checkpoint(sid, 3), builds_on=2, events=_events([4], "s3"))
    await cp.append_events(sid, _events([5], "end"), builds_on=3)
    stored = await cp.load_events(sid)
    assert [event["seq"] for event in stored] == [0, 1, 2, 3, 4, 5]
    assert stored[2] == {"seq": 2, "scope": "s1", "message": "s12", "metadata": {}}
    assert [event["scope"] for event in stored] == ["s0", "s0", "s1", "s1", "s3", "end"]


async def check_refused_save_stores_nothing(cp: Checkpointer, caps: Capabilities) -> None:
    """A refused save writes neither its step nor any of its events."""
    sid = new_sid("refused")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1, events=_events([0, 1]))
    await cp.save(make_checkpoint(sid, 1), builds_on=0, events=_events([2]))
    late = make_checkpoint(sid, 2, extra={"late": True})
    await _refused(sid, 0, 1, cp.save(late, builds_on=0, events=_events([3, 4])))
    # A seq already stored refuses the whole save too: neither the step nor the new events.
    repeated = await _raised(
        cp.save(late, builds_on=1, events=_events([5, 2, 6])), CheckpointConflict
    )
    assert repeated is not None, "a save repeating a stored event seq was stored"
    assert "seq 2" in str(repeated), repeated
    assert (await cp.load_latest(sid) or late).step == 1
    assert await cp.load(sid, 2) is None
    assert [event["seq"] for event in await cp.load_events(sid)] == [0, 1, 2]
    await cp.save(late, builds_on=1, events=_events([3]))  # the honest retry goes through
    assert_same(await cp.load_latest(sid), late)


async def check_events_never_replaced(cp: Checkpointer, caps: Capabilities) -> None:
    """A seq already stored (or given twice in one call) is a conflict for a save or a fenced
    append; nothing of the call is stored; a bad seq is a clear error."""
    sid = new_sid("dup-seq")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1, events=_events([0, 1], "first"))
    for batch in (_events([2, 1], "again"), _events([3, 3], "twice")):
        refused = await _raised(cp.append_events(sid, batch, builds_on=0), CheckpointConflict)
        assert refused is not None, f"events {[e['seq'] for e in batch]} were stored twice"
    stored = await cp.load_events(sid)
    assert [(event["seq"], event["scope"]) for event in stored] == [(0, "first"), (1, "first")]
    for bad in ({"scope": "no seq"}, {"seq": "7"}, {"seq": -1}, {"seq": True}):
        error = await _raised(cp.append_events(sid, [bad]), CheckpointError)
        assert error is not None, f"an event {bad} was accepted"
        assert not isinstance(error, CheckpointConflict), f"{bad} is bad input, not a conflict"
        assert "seq" in str(error), error
    assert len(await cp.load_events(sid)) == 2


async def check_load_events_window(cp: Checkpointer, caps: Capabilities) -> None:
    """``load_events(after_seq, limit)`` pages through the log in seq order."""
    sid = new_sid("window")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1, events=_events(range(10)))
    assert [e["seq"] for e in await cp.load_events(sid, after_seq=3, limit=4)] == [4, 5, 6, 7]
    assert [e["seq"] for e in await cp.load_events(sid, 7, None)] == [8, 9]
    assert [e["seq"] for e in await cp.load_events(sid, limit=2)] == [0, 1]
    assert await cp.load_events(sid, limit=0) == []
    assert await cp.load_events(sid, after_seq=9, limit=5) == []
    for limit in (-1, 1.5):
        refused = await _raised(cp.load_events(sid, limit=limit), ValueError)  # type: ignore[arg-type]
        assert refused is not None, f"limit={limit!r} was accepted"


async def check_append_events_fenced(cp: Checkpointer, caps: Capabilities) -> None:
    """``append_events`` builds on the latest step like a save; refused appends store nothing."""
    sid = new_sid("append-fence")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1)
    await cp.save(make_checkpoint(sid, 1), builds_on=0, events=_events([0]))
    await cp.append_events(sid, _events([1], "end"), builds_on=1)
    await _refused(sid, 0, 1, cp.append_events(sid, _events([2]), builds_on=0))
    await _refused(sid, -1, 1, cp.append_events(sid, _events([3]), builds_on=-1))
    gone = new_sid("append-missing")
    await _refused(gone, 0, None, cp.append_events(gone, _events([0]), builds_on=0))
    assert [event["seq"] for event in await cp.load_events(sid)] == [0, 1]
    assert await cp.load_events(gone) == []
    for bad in (-2, "1"):
        attempt = cp.append_events(sid, _events([9]), builds_on=bad)  # type: ignore[arg-type]
        assert await _raised(attempt, ValueError) is not None, f"builds_on={bad!r} was accepted"


async def check_fenced_race(cp: Checkpointer, caps: Capabilities) -> None:
    """Writers racing to save the same next step: exactly one commits, every other is refused,
    and only the winner's events are stored."""
    sid = new_sid("race-fence")
    await cp.save(make_checkpoint(sid, 0), builds_on=-1, events=_events([0]))
    writers = 8

    async def attempt(writer: int) -> int | None:
        checkpoint = make_checkpoint(sid, 1, extra={"writer": writer})
        try:
            await cp.save(checkpoint, builds_on=0, events=_events([1, 2], f"w{writer}"))
        except CheckpointConflict:
            return None
        return writer

    winners = [w for w in await asyncio.gather(*map(attempt, range(writers))) if w is not None]
    assert len(winners) == 1, f"{len(winners)} writers committed step 1"
    latest = await cp.load_latest(sid)
    assert latest is not None
    assert (latest.step, latest.state.extra["writer"]) == (1, winners[0])
    stored = await cp.load_events(sid)
    assert [event["seq"] for event in stored] == [0, 1, 2]
    assert {event["scope"] for event in stored[1:]} == {f"w{winners[0]}"}
    if caps.keeps_history:
        assert [info.step for info in await cp.history(sid)] == [0, 1]


FENCE_CHECKS: tuple[Check, ...] = (
    check_fence_new_session,
    check_fence_stale_and_future,
    check_fence_resave_latest,
    check_events_saved_with_their_step,
    check_refused_save_stores_nothing,
    check_events_never_replaced,
    check_load_events_window,
    check_append_events_fenced,
    check_fenced_race,
)
