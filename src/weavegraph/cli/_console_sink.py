"""The CLI's readable event display: StdOutSink's lines, with streamed LLM tokens kept together.

A model streaming word by word would otherwise print one line per token; here the chunks of one
stream are written as running text on a single line, and the next other event starts a new line.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import IO

from rich.console import Console
from rich.text import Text

from ..events.model import LLM_CHUNK_SCOPE, LLM_FINAL_SCOPE, Event, EventType
from ..events.sinks import SinkDispatch, format_event


class ConsoleSink:
    """Human-readable, coloured on a terminal; runs on the bus's worker thread."""

    dispatch: SinkDispatch = "thread"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self._open_stream: str | None = None

    @property
    def name(self) -> str:
        return "console"

    def handle(self, event: Event) -> None:
        if event.type == EventType.LLM and event.scope == LLM_CHUNK_SCOPE:
            stream_id = str(event.metadata.get("stream_id") or event.metadata.get("node_id"))
            if self._open_stream != stream_id:
                self._end_line()
                self._console.print(format_event(replace(event, message="")), end="  ")
                self._open_stream = stream_id
            self._console.print(Text(event.message, style="magenta"), end="")
            return
        if event.type == EventType.LLM and event.scope == LLM_FINAL_SCOPE and self._open_stream:
            # The text was just streamed: show how long it was instead of repeating it.
            words = len(event.message.split())
            event = replace(event, message=f"({words} words)")
        self._end_line()
        self._console.print(format_event(event))

    def _end_line(self) -> None:
        if self._open_stream is not None:
            self._console.print()
            self._open_stream = None

    def flush(self) -> None:
        self._console.file.flush()

    def close(self) -> None:
        self._end_line()
        self.flush()
