"""Built-in sinks: memory, channel (queue or callable), JSON Lines, stdout."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from pathlib import Path

import pytest

from weavegraph.errors import ConfigError
from weavegraph.events import (
    ChannelSink,
    Event,
    EventBus,
    EventSink,
    JsonLinesSink,
    MemorySink,
    StdOutSink,
    format_event,
    llm_event,
    node_event,
    stream_end_event,
)


def numbered(n: int) -> list[Event]:
    return [node_event("n", 1, "tick", str(i)).with_sequence(i, "s") for i in range(n)]


def test_builtin_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    sinks = [MemorySink(), ChannelSink(print), JsonLinesSink(tmp_path / "e.jsonl"), StdOutSink()]
    assert all(isinstance(sink, EventSink) for sink in sinks)
    assert [sink.name for sink in sinks] == ["memory", "channel", "jsonl", "stdout"]


def test_memory_sink_snapshot_clear_and_thread_safety() -> None:
    sink = MemorySink()

    def produce() -> None:
        for event in numbered(1000):
            sink.handle(event)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = sink.snapshot()
    assert len(snapshot) == len(sink) == 4000
    sink.clear()
    assert sink.snapshot() == []
    assert len(snapshot) == 4000  # a snapshot is a copy


async def test_memory_sink_is_complete_as_soon_as_publish_returns() -> None:
    sink = MemorySink()
    bus = EventBus.with_sink(sink)
    for event in numbered(3):
        bus.publish(event)
    assert [e.message for e in sink.snapshot()] == ["0", "1", "2"]


async def test_channel_sink_feeds_an_asyncio_queue() -> None:
    queue: asyncio.Queue[Event] = asyncio.Queue()
    async with EventBus.with_sink(ChannelSink(queue)) as bus:
        for event in numbered(3):
            bus.publish(event)
        await bus.drain()
    assert [queue.get_nowait().message for _ in range(3)] == ["0", "1", "2"]


async def test_channel_sink_with_a_full_queue_drops_the_oldest() -> None:
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=2)
    sink = ChannelSink(queue)
    async with EventBus.with_sink(sink) as bus:
        for event in numbered(5):
            bus.publish(event)
        await bus.drain()
    assert sink.dropped == 3
    assert [queue.get_nowait().message for _ in range(2)] == ["3", "4"]


async def test_channel_sink_calls_sync_and_async_callables() -> None:
    seen: list[str] = []
    seen_async: list[str] = []

    async def send(event: Event) -> None:
        await asyncio.sleep(0)
        seen_async.append(event.message)

    async with EventBus.with_sinks(
        [ChannelSink(lambda e: seen.append(e.message)), ChannelSink(send)]
    ) as bus:
        for event in numbered(3):
            bus.publish(event)
        await bus.drain()
    assert seen == seen_async == ["0", "1", "2"]


async def test_json_lines_sink_appends_to_a_path(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    async with EventBus.with_sink(JsonLinesSink(path)) as bus:
        for event in numbered(3):
            bus.publish(event)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["message"] for line in lines] == ["0", "1", "2"]
    assert lines[0]["metadata"] == {"node_id": "n", "step": 1}
    async with EventBus.with_sink(JsonLinesSink(path)) as bus:
        bus.publish(numbered(1)[0])
    assert len(path.read_text().splitlines()) == 4


async def test_json_lines_sink_writes_to_an_open_file_without_closing_it() -> None:
    out = io.StringIO()
    async with EventBus.with_sink(JsonLinesSink(out)) as bus:
        bus.publish(numbered(1)[0])
    assert json.loads(out.getvalue())["seq"] == 0
    assert not out.closed


@pytest.mark.parametrize("target", [None, 3, b"e.jsonl"])
def test_json_lines_sink_refuses_what_is_neither_a_path_nor_a_file(target: object) -> None:
    with pytest.raises(ConfigError, match="takes a path or an open text file"):
        JsonLinesSink(target)  # type: ignore[arg-type]


async def test_stdout_sink_prints_readable_lines_without_colour_off_a_terminal() -> None:
    out = io.StringIO()
    async with EventBus.with_sink(StdOutSink(out, timestamps=False)) as bus:
        bus.publish(node_event("fetch", 2, "progress", "half way"))
        bus.publish(stream_end_event("abc", "completed", 3))
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["node", "fetch@2", "progress", "half", "way"]
    assert lines[1] == "run completed  session=abc step=3"
    assert "\x1b[" not in out.getvalue()


def test_stdout_sink_colours_when_asked() -> None:
    out = io.StringIO()
    sink = StdOutSink(out, color=True)
    sink.handle(node_event("a", 1, "s", "m"))
    assert "\x1b[" in out.getvalue()


def test_format_event_quotes_llm_chunks_to_show_whitespace() -> None:
    text = format_event(llm_event("chunk", "Hel ", node_id="llm", step=1), timestamps=False)
    assert text.plain.endswith("chunk  'Hel '")
