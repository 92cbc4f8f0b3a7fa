"""FakeClock: a controllable clock that runs accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import weavegraph as wg
from weavegraph.testing import FakeClock, MemorySink

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_time_moves_only_when_told() -> None:
    clock = FakeClock()
    assert clock.now() == clock.now() == START
    assert clock.advance(1.5) == START + timedelta(seconds=1.5)
    assert clock.advance(delta=timedelta(minutes=1)) == START + timedelta(seconds=61.5)
    clock.set(datetime(2030, 5, 1, tzinfo=UTC))
    assert clock() == datetime(2030, 5, 1, tzinfo=UTC)


def test_tick_advances_on_every_reading() -> None:
    clock = FakeClock(START, tick=0.25)
    assert [clock.now() for _ in range(3)] == [START + timedelta(seconds=s) for s in (0, 0.25, 0.5)]
    assert clock.peek() == START + timedelta(seconds=0.75)


def test_refuses_naive_datetimes_and_going_backwards() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        FakeClock().set(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().advance(-1)


async def test_a_run_stamps_events_and_ctx_now_with_the_injected_clock() -> None:
    clock = FakeClock(START, tick=1)
    seen: list[datetime] = []

    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        seen.append(ctx.now())
        ctx.emit("s", "m")

    app = wg.GraphBuilder().add_node("n", node).add_edge(wg.START, "n").add_edge("n", wg.END)
    memory = MemorySink()
    await app.compile().invoke("go", event_bus=wg.EventBus.with_sink(memory), clock=clock)
    stamps = [event.timestamp for event in memory.snapshot()]
    assert all(START <= stamp < START + timedelta(hours=1) for stamp in [*seen, *stamps])
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
