"""EventBus: fan-out, bounded buffers that drop the oldest, failure isolation, drain and close."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from weavegraph.errors import ConfigError
from weavegraph.events import (
    Event,
    EventBus,
    MemorySink,
    SinkDiagnostic,
    diagnostic_event,
    node_event,
)


def numbered(n: int, node: str = "n") -> list[Event]:
    return [node_event(node, 1, "tick", str(i)).with_sequence(i, "s") for i in range(n)]


class CountingSink:
    """A blocking sync sink: runs on its own thread."""

    def __init__(self, name: str = "counting") -> None:
        self.name = name
        self.received: list[Event] = []

    def handle(self, event: Event) -> None:
        self.received.append(event)


class FailingSink:
    name = "failing"

    def handle(self, event: Event) -> None:
        raise RuntimeError(f"cannot handle {event.message}")


class AsyncSink:
    name = "async"

    def __init__(self) -> None:
        self.received: list[str] = []

    async def handle(self, event: Event) -> None:
        await asyncio.sleep(0)
        self.received.append(event.message)


async def test_publish_with_nobody_listening_never_fails() -> None:
    bus = EventBus()
    for event in numbered(3):
        bus.publish(event)
    assert bus.metrics().published == 3
    assert bus.metrics().dropped == 0
    await bus.drain()
    await bus.aclose()


async def test_subscriber_receives_events_in_publish_order() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    for event in numbered(100):
        bus.publish(event)
    received = []
    async for event in sub:
        received.append(event.message)
        if len(received) == 100:
            break
    assert received == [str(i) for i in range(100)]
    assert bus.metrics().subscribers == 1
    sub.close()
    assert bus.metrics().subscribers == 0


async def test_subscriber_is_woken_by_a_later_publish() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    first = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0)
    assert not first.done()
    bus.publish(numbered(1)[0])
    assert (await first).message == "0"


async def test_publish_from_worker_threads_keeps_each_threads_order() -> None:
    bus = EventBus()
    sub = bus.subscribe(unbounded=True)

    def produce(node: str) -> None:
        for event in numbered(500, node):
            bus.publish(event)

    await asyncio.gather(*(asyncio.to_thread(produce, f"t{i}") for i in range(4)))
    per_node: dict[str, list[int]] = {}
    for _ in range(2000):
        event = await anext(sub)
        per_node.setdefault(event.metadata["node_id"], []).append(int(event.message))
    assert per_node == {f"t{i}": list(range(500)) for i in range(4)}


async def test_a_lagging_subscriber_skips_the_oldest_and_the_drop_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(capacity=10)
    sub = bus.subscribe()
    with caplog.at_level(logging.WARNING, logger="weavegraph.events"):
        for event in numbered(25):
            bus.publish(event)
    received = [(await anext(sub)).message for _ in range(10)]
    assert received == [str(i) for i in range(15, 25)]
    assert sub.dropped == 15
    assert bus.metrics().dropped == 15
    assert bus.metrics().capacity == 10
    assert any("falling behind" in record.getMessage() for record in caplog.records)


async def test_a_failing_sink_shows_in_health_and_diagnostics_without_affecting_others() -> None:
    memory, counting = MemorySink(), CountingSink()
    bus = EventBus.with_sinks([FailingSink(), memory, counting])
    diagnostics = bus.diagnostics()
    for event in numbered(5):
        bus.publish(event)
    await bus.drain()
    health = {h.sink: h for h in bus.sink_health()}
    assert health["failing"].error_count == 5
    assert health["failing"].last_error == "RuntimeError: cannot handle 4"
    assert health["failing"].last_error_at is not None
    assert health["memory"].error_count == 0
    assert [e.message for e in memory.snapshot()] == [str(i) for i in range(5)]
    assert [e.message for e in counting.received] == [str(i) for i in range(5)]
    seen: list[SinkDiagnostic] = [await anext(diagnostics) for _ in range(5)]
    assert [d.occurrence for d in seen] == [1, 2, 3, 4, 5]
    assert {d.sink for d in seen} == {"failing"}
    assert "cannot handle 0" in seen[0].error
    await bus.aclose()
    assert [d async for d in diagnostics] == []


class GatedSink(CountingSink):
    """A sync sink stuck in its first ``handle`` until ``gate`` opens (at most 30 s)."""

    def __init__(self, name: str = "gated") -> None:
        super().__init__(name)
        self.gate = threading.Event()
        self.gave_up = False

    def handle(self, event: Event) -> None:
        # A bounded wait: if publish ever waited for this sink, the test fails instead of hanging.
        if not self.gave_up and not self.gate.wait(30):
            self.gave_up = True
        super().handle(event)


async def test_a_stuck_sync_sink_neither_blocks_the_producer_nor_loses_count() -> None:
    stuck = GatedSink("slow")
    memory = MemorySink()
    bus = EventBus.with_sinks([stuck, memory], capacity=64)
    for event in numbered(5000):
        bus.publish(event)
    # Every event was published while the sink could not take a single one.
    assert stuck.received == []
    assert len(memory.snapshot()) == 5000
    stuck.gate.set()
    await bus.drain()
    assert not stuck.gave_up
    dropped = bus.metrics().dropped
    assert dropped > 0
    assert len(stuck.received) + dropped == 5000
    assert bus.sink_health()[0].dropped == dropped
    assert stuck.received[-1].message == "4999"  # the newest survive, the oldest are skipped
    await bus.aclose()


async def test_async_sinks_are_awaited_on_the_loop() -> None:
    sink = AsyncSink()
    async with EventBus.with_sink(sink) as bus:
        for event in numbered(50):
            bus.publish(event)
        await bus.drain()
        assert sink.received == [str(i) for i in range(50)]


async def test_events_published_before_the_loop_side_starts_are_delivered() -> None:
    sink = AsyncSink()
    bus = EventBus.with_sink(sink)
    await asyncio.to_thread(lambda: [bus.publish(e) for e in numbered(3)])
    await bus.drain()
    assert sink.received == ["0", "1", "2"]


async def test_a_sink_added_later_sees_only_later_events() -> None:
    bus = EventBus()
    bus.publish(diagnostic_event("x", "before"))
    memory = MemorySink()
    bus.add_sink(memory)
    bus.publish(diagnostic_event("x", "after"))
    assert [e.message for e in memory.snapshot()] == ["after"]
    assert bus.metrics().sinks == 1


async def test_close_ends_subscriptions_and_closes_sinks() -> None:
    closed = threading.Event()

    class ClosingSink(CountingSink):
        def close(self) -> None:
            closed.set()

    sink = ClosingSink("closing")
    bus = EventBus.with_sink(sink)
    sub = bus.subscribe()
    bus.publish(numbered(1)[0])
    await bus.aclose()
    assert [e.message async for e in sub] == ["0"]
    assert closed.is_set()
    assert [e.message for e in sink.received] == ["0"]
    assert [e async for e in bus.subscribe()] == []


@pytest.mark.parametrize("capacity", [0, -1, "10", 2.5, None])
def test_capacity_must_be_a_positive_int(capacity: object) -> None:
    with pytest.raises(ConfigError, match=f"capacity must be an int >= 1, got {capacity!r}"):
        EventBus(capacity=capacity)  # type: ignore[arg-type]


def test_an_unknown_dispatch_is_refused() -> None:
    class Odd(CountingSink):
        dispatch = "elsewhere"

    with pytest.raises(ValueError, match="dispatch"):
        EventBus.with_sink(Odd())


def test_something_that_is_not_a_sink_is_refused_when_added() -> None:
    class Nameless:
        def handle(self, event: Event) -> None: ...

    class Handleless:
        name = "handleless"

    for not_a_sink in (Nameless(), Handleless(), print):
        with pytest.raises(TypeError, match=r"`name` and a `handle\(event\)`"):
            EventBus.with_sinks([not_a_sink])  # pyright: ignore[reportArgumentType]


async def test_a_sync_sink_that_blocks_does_not_stall_the_event_loop() -> None:
    release = threading.Event()

    class Blocking:
        name = "blocking"

        def __init__(self) -> None:
            self.received: list[str] = []

        def handle(self, event: Event) -> None:
            release.wait()
            self.received.append(event.message)

    sink = Blocking()
    bus = EventBus.with_sink(sink)
    for event in numbered(3):
        bus.publish(event)
    for _ in range(10):
        await asyncio.sleep(0)  # the loop keeps turning while the sink is stuck
    assert sink.received == []
    release.set()
    await bus.drain()
    assert sink.received == ["0", "1", "2"]
    await bus.aclose()
