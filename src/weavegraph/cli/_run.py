"""``weavegraph demo``, ``run`` and ``resume``: drive a session with live events and progress."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
from rich.text import Text

from ..app import App
from ..config import CheckpointerType, checkpointer_type
from ..errors import ConfigError, StateError
from ..events import EventBus, JsonLinesSink
from ..events.bus import LIVE_VIEW_CAPACITY
from ..events.sinks import EventSink
from ..llm import chat_model
from ..runtime.stop import StopRequest, signal_handlers
from ..runtime.values import new_session_id, validate_session_id
from ..sessions import NO_ANSWER, AppRunner, DriveResult, StepReport
from ..state import VersionedState, freeze_json
from ..status import RunStatus
from ._console_sink import ConsoleSink
from ._output import state_panel, stderr_console, stdout_console
from ._storage import open_from_args, storage_flags
from ._target import load_target

EXIT_INTERRUPTED = 130
"""Exit status after a Ctrl-C / SIGTERM stop (the shell convention for SIGINT)."""


def read_state(path: str) -> VersionedState:
    """A VersionedState from a JSON file (``-`` is stdin); a ConfigError says what is wrong."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --state file {path!r}: {exc.strerror}") from None
    try:
        return VersionedState.from_json_value(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"--state file {path!r} is not JSON: {exc}") from None
    except StateError as exc:
        raise ConfigError(f"--state file {path!r} is not a VersionedState: {exc}") from None


def parse_answer(text: str) -> Any:
    """``--answer``: a JSON value, or else the text itself as a string (``--answer yes``).

    A ConfigError when it cannot be stored (an int beyond 64 bits, nesting too deep).
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    try:
        return freeze_json(value)
    except ValueError as exc:
        raise ConfigError(f"--answer cannot be stored: {exc}") from None


def _plain(value: Any) -> Any:
    # Frozen JSON containers (FrozenDict/FrozenList) are Mapping/Sequence, not dict/list.
    if isinstance(value, Mapping):
        return dict(cast("Mapping[str, Any]", value))
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(cast("Sequence[Any]", value))
    raise TypeError(type(value).__name__)


def _sinks(mode: str) -> list[EventSink]:
    if mode == "pretty":
        return [ConsoleSink()]
    if mode == "jsonl":
        return [JsonLinesSink(sys.stdout)]
    return []


def _progress_line(report: StepReport) -> Text:
    line = Text.assemble(
        ("  ✓ ", "green"),
        (f"step {report.step}", "bold"),
        f"  ran {', '.join(report.ran_nodes) or '-'}",
    )
    if report.skipped_nodes:
        line.append(f"  skipped {', '.join(report.skipped_nodes)}", style="dim")
    nxt = ", ".join(report.next_frontier) or "done"
    line.append(f"  → {nxt}", style="cyan")
    return line


async def drive(
    app: App,
    args: argparse.Namespace,
    session_id: str,
    state: VersionedState | None,
    answer: Any = NO_ANSWER,
    *,
    context: Any = None,
) -> DriveResult:
    """Run with the options of ``args`` (storage, events, interrupts), stopping on signals;
    ``answer`` answers the session's pending ``ctx.interrupt``; ``context`` reaches the nodes."""
    stop = StopRequest()
    with signal_handlers(stop, on_signal=_tell_stopping):
        checkpointer = await open_from_args(args)
        # Shown live; stored with each step by the run itself (`weavegraph serve` replays them).
        bus = EventBus.with_sinks(
            _sinks(args.events), lifecycle=args.trace, capacity=LIVE_VIEW_CAPACITY
        )
        console = stderr_console()

        async def progress(report: StepReport) -> None:
            # Wait until the step's events are on screen, so progress lines never overtake them.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):  # a stuck sink only costs the ordering
                    await bus.drain()
            console.print(_progress_line(report))

        try:
            async with AppRunner(app, checkpointer, event_bus=bus, context=context) as runner:
                return await runner.drive(
                    session_id,
                    state,
                    answer=answer,
                    interrupt_before=args.interrupt_before,
                    on_step=progress,
                    stop=stop,
                )
        finally:
            try:
                await bus.aclose()  # every event is shown before the summary
            finally:
                await checkpointer.close()


def _tell_stopping(sig: signal.Signals, at_once: bool) -> None:
    if at_once:
        stderr_console().print(
            f"[yellow]{sig.name}: stopping now (the step in flight is not saved)[/]"
        )
    else:
        stderr_console().print(
            f"[yellow]{sig.name}: stopping after the current step (again to stop now)…[/]"
        )


def report(result: DriveResult, args: argparse.Namespace, resume_hint: str) -> int:
    """Print the outcome; return the exit status."""
    out = stdout_console() if args.events != "jsonl" else stderr_console()
    err = stderr_console()
    in_memory = checkpointer_type(args.checkpointer, args.db) is CheckpointerType.InMemory
    if result.status == RunStatus.COMPLETED:
        out.print(state_panel(result.state))
        steps = (
            ("(in memory: nothing was stored)", "dim")
            if in_memory
            else (
                f"its steps: weavegraph sessions history {result.session_id}{storage_flags(args)}",
                "bold",
            )
        )
        out.print(
            Text.assemble(
                ("session ", "bold"),
                (result.session_id, "bold green"),
                f"  completed at step {result.step}; ",
                steps,
            )
        )
        return 0

    out.print(state_panel(result.state, title=f"state at step {result.step}"))
    paused = result.paused
    if paused is not None and paused.kind == "interrupt":
        question = orjson.dumps(paused.value, default=_plain).decode()
        what = f" waiting for an answer: {paused.asking} asks {question}"
        resume_hint += " --answer JSON"
    elif paused is not None:
        what = f" paused {paused.kind} {', '.join(paused.nodes) or 'the step'}"
    else:
        what = " stopped"
    err.print(
        Text.assemble(
            ("session ", "bold"),
            (result.session_id, "bold yellow"),
            f"{what} at step {result.step}",
            *(
                [" (in memory: it cannot be resumed; use --checkpointer sqlite or postgres)"]
                if in_memory
                else [", checkpointed. Continue with:\n  ", (resume_hint, "bold")]
            ),
        )
    )
    return 0 if result.paused is not None else EXIT_INTERRUPTED


async def cmd_demo(args: argparse.Namespace) -> int:
    from .. import demo

    spec: str | None = args.model or os.environ.get(demo.MODEL_ENV) or None
    model = chat_model(spec) if spec else None
    app = demo.demo_app(token_delay=max(0.0, args.delay), model=model)
    session_id = validate_session_id(args.session or new_session_id("demo"))
    state = demo.initial_state(args.question or demo.DEFAULT_QUESTION)
    console = stderr_console()
    console.print(
        Text.assemble(
            ("weavegraph demo", "bold magenta"),
            f"  session {session_id} · plan → 3 researchers in parallel → join → "
            f"{spec or 'fake model'} (streams tokens) → review loop → publish",
        )
    )
    try:
        result = await drive(app, args, session_id, state)
    finally:
        if model is not None:
            await model.aclose()
    if result.resumed:
        console.print(f"[dim](resumed the stored session {session_id})[/]")
    return report(result, args, f"weavegraph demo --session {session_id}{storage_flags(args)}")


async def cmd_run(args: argparse.Namespace) -> int:
    app, context = load_target(args.target)
    state: VersionedState | None = None
    if args.input is not None:
        state = VersionedState.new_with_user_message(args.input)
    elif args.state is not None:
        state = read_state(args.state)
    session_id = validate_session_id(args.session or new_session_id())
    stored_step = await _stored_step(args, session_id) if args.session else None
    stderr_console().print(_starting_line(args, session_id, stored_step))
    result = await drive(app, args, session_id, state, context=context)
    hint = f"weavegraph resume {session_id} {args.target}{storage_flags(args)}"
    return report(result, args, hint)


async def _stored_step(args: argparse.Namespace, session_id: str) -> int | None:
    """The latest stored step of ``session_id``, or None when it is not stored (or in memory)."""
    if args.checkpointer == "memory" and not (args.db or "").startswith("postgres"):
        return None
    checkpointer = await open_from_args(args)
    try:
        latest = await checkpointer.load_latest(session_id)
    finally:
        await checkpointer.close()
    return None if latest is None else latest.step


def _starting_line(args: argparse.Namespace, session_id: str, stored_step: int | None) -> Text:
    """What ``run`` starts from: a stored checkpoint, the given input or state, or nothing."""
    line = Text.assemble(("weavegraph run", "bold magenta"), f"  session {session_id}: ")
    given = args.input is not None or args.state is not None
    if stored_step is not None:
        line.append(f"continuing from its stored checkpoint at step {stored_step}")
        if given:
            flag = "--input" if args.input is not None else "--state"
            line.append(f" ({flag} is ignored: a stored session keeps its own state)", "yellow")
    elif args.input is not None:
        line.append("starting from one user message (--input)")
    elif args.state is not None:
        line.append(f"starting from the state in {args.state} (--state)")
    else:
        line.append("starting from an empty state (no --input or --state given)", "yellow")
    return line


async def cmd_resume(args: argparse.Namespace) -> int:
    app, context = load_target(args.target)
    validate_session_id(args.session)
    answer = NO_ANSWER if args.answer is None else parse_answer(args.answer)
    checkpointer = await open_from_args(args, must_exist=True)
    try:
        exists = await checkpointer.load_latest(args.session) is not None
    finally:
        await checkpointer.close()
    if not exists:
        from ..errors import SessionNotFound

        raise SessionNotFound(args.session)
    result = await drive(app, args, args.session, None, answer, context=context)
    hint = f"weavegraph resume {args.session} {args.target}{storage_flags(args)}"
    return report(result, args, hint)
