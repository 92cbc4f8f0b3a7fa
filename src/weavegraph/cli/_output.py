"""How the CLI shows things: final states, tables, errors."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..checkpoint.base import SessionInfo, StepInfo
from ..diagnostics import print_diagnostic
from ..errors import WeavegraphError
from ..session_status import WAITING_LABEL
from ..state import VersionedState
from ..status import RunStatus


def stdout_console() -> Console:
    """The console for results (colour only on a terminal, like every well-behaved CLI)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    """The console for progress and errors, so stdout stays clean for results and JSON lines."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def show_error(exc: BaseException, *, debug: bool) -> None:
    """Print an error the user can act on (code, message, nodes, help); a traceback only with
    ``--debug``."""
    console = stderr_console()
    if debug:
        console.print(Text("".join(traceback.format_exception(exc)), style="dim"))
    print_diagnostic(exc, console)
    if not debug and not isinstance(exc, WeavegraphError):
        console.print(Text("(run again with --debug for the traceback)", style="dim"))


def state_panel(state: VersionedState, *, title: str = "final state") -> Panel:
    """The state as a person wants to read it: messages, extra and errors (the channels' internal
    version numbers are not counts of anything, so they are left to ``--json``)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for message in state.messages:
        table.add_row(Text(f"[{message.role}]", style="bold cyan"), Text(message.content))
    for key, value in state.extra.items():
        table.add_row(f"extra.{key}", Text(_compact(value)))
    for error in state.errors:
        where = f"{error.node_id}@{error.step}" if error.node_id else error.scope
        table.add_row(Text("error", style="bold yellow"), Text(f"{where}: {error.message}"))
    if not state.errors:
        table.add_row(Text("errors", style="dim"), Text("none", style="dim"))
    return Panel(table, title=title, title_align="left", border_style="green")


def status_label(status: str | None) -> str:
    """A status as people read it: ``interrupted`` is "waiting for an answer" (never the word
    shown for a stopped run)."""
    if status is None:
        return "?"
    return WAITING_LABEL if status == RunStatus.INTERRUPTED else str(status)


def sessions_table(sessions: Sequence[SessionInfo]) -> Table:
    table = Table(title=f"{len(sessions)} session(s)", title_justify="left")
    table.add_column("session")
    table.add_column("status")
    table.add_column("latest step", justify="right")
    table.add_column("created (UTC)")
    table.add_column("updated (UTC)")
    for info in sessions:
        table.add_row(
            info.session_id,
            status_label(info.status),
            str(info.latest_step),
            _when(info.created_at),
            _when(info.updated_at),
        )
    return table


def history_table(session_id: str, steps: Sequence[StepInfo]) -> Table:
    table = Table(title=f"history of {session_id}", title_justify="left")
    table.add_column("step", justify="right")
    table.add_column("created (UTC)")
    table.add_column("ran")
    table.add_column("skipped")
    table.add_column("updated channels")
    for info in steps:
        table.add_row(
            str(info.step),
            _when(info.created_at),
            ", ".join(info.ran_nodes) or "-",
            ", ".join(info.skipped_nodes) or "-",
            ", ".join(info.updated_channels) or "-",
        )
    return table


def print_json(value: Any) -> None:
    """Machine-readable output (``--json``) on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _compact(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, list) and len(value) > 1:  # pyright: ignore[reportUnknownArgumentType]
        text = f"[{len(value)} items] {text}"  # pyright: ignore[reportUnknownArgumentType]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)
