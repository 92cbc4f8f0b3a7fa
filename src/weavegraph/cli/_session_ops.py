"""``weavegraph sessions fork|edit|retry|cancel``: the verbs that change a stored session."""

from __future__ import annotations

import argparse
from typing import Any

import orjson
from rich.text import Text

from ..checkpoint import Checkpointer
from ..errors import ConfigError, SessionError, SessionNotFound, StateError
from ..partial import NodePartial
from ..runtime.values import new_session_id, validate_session_id
from ..session_status import WAITING_LABEL
from ..sessions import AppRunner
from ..status import RunStatus
from ._output import state_panel, stdout_console
from ._run import drive, parse_answer, report
from ._storage import open_from_args, storage_flags
from ._target import load_app, load_target

RETRYABLE = (RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.STOPPED)
"""The statuses ``sessions retry`` runs again."""


async def cmd_fork(args: argparse.Namespace) -> int:
    """Copy SESSION as it was after ``--step`` into a new session; print how to continue it."""
    session_id = validate_session_id(args.session)
    new_id = validate_session_id(args.new_id or new_session_id())
    app = load_app(args.target)
    checkpointer = await open_from_args(args, must_exist=True)
    try:
        async with AppRunner(app, checkpointer) as runner:
            init = await runner.fork(session_id, args.step, new_id)
    finally:
        await checkpointer.close()
    stdout_console().print(
        Text.assemble(
            ("forked ", "bold"),
            f"{session_id} at step {init.step} into ",
            (new_id, "bold green"),
            "; continue it with:\n  ",
            (f"weavegraph resume {new_id} {args.target}{storage_flags(args)}", "bold"),
        )
    )
    return 0


async def cmd_edit(args: argparse.Namespace) -> int:
    """Apply ``--update`` / ``--extra`` to SESSION's state as a recorded step; print the result."""
    session_id = validate_session_id(args.session)
    partial = edit_partial(args.update, args.extra)
    app = load_app(args.target)
    checkpointer = await open_from_args(args, must_exist=True)
    try:
        async with AppRunner(app, checkpointer) as runner:
            report = await runner.update_state(session_id, partial)
            state = await runner.get_state(session_id)
    finally:
        await checkpointer.close()
    changed = ", ".join(report.updated_channels) or "nothing"
    title = f"{session_id} after the edit (step {report.step}, changed {changed})"
    stdout_console().print(state_panel(state, title=title))
    return 0


def edit_partial(update: str | None, extra: list[str]) -> NodePartial:
    """The update that ``--update JSON`` and the ``--extra KEY=VALUE`` options describe."""
    if update is None and not extra:
        raise ConfigError(
            "sessions edit needs --update and/or --extra",
            help='For example: --extra score=9 or --update \'{"extra": {"score": 9}}\'',
        )
    value: Any = {}
    if update is not None:
        try:
            value = orjson.loads(update)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"--update is not JSON: {exc}") from None
    try:
        partial = NodePartial.from_json_value(value)
    except StateError as exc:
        raise ConfigError(f"--update: {exc.message}") from None
    pairs: dict[str, Any] = {}
    for item in extra:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--extra expects KEY=VALUE, got {item!r}")
        pairs[key] = parse_answer(text)
    return partial.with_extra(pairs) if pairs else partial


async def cmd_retry(args: argparse.Namespace) -> int:
    """Run a failed, cancelled or stopped SESSION again from its latest checkpoint."""
    session_id = validate_session_id(args.session)
    app, context = load_target(args.target)
    checkpointer = await open_from_args(args, must_exist=True)
    try:
        if await _requeued(checkpointer, session_id):
            stdout_console().print(f"session {session_id!r} queued again: a worker continues it")
            return 0
        async with AppRunner(app, checkpointer) as runner:
            status = (await runner.session_info(session_id)).status
    finally:
        await checkpointer.close()
    if status not in RETRYABLE:
        shown = WAITING_LABEL if status is RunStatus.INTERRUPTED else status
        hint = (
            f"Answer it: weavegraph resume {session_id} {args.target} --answer JSON"
            if status is RunStatus.INTERRUPTED
            else "Only a session whose last run failed, was cancelled or was stopped is retried."
        )
        raise SessionError(f"session {session_id!r} is {shown}: nothing to retry", help=hint)
    result = await drive(app, args, session_id, None, context=context)
    return report(result, args, f"weavegraph sessions retry {session_id} {args.target}")


async def _requeued(checkpointer: Checkpointer, session_id: str) -> bool:
    """A session that workers run (PostgreSQL) goes back to their queue instead of running here;
    False when no worker manages it. SessionError when its queue status is not retryable."""
    from ..checkpoint.postgres import PostgresCheckpointer
    from ..queue import QueueClient

    if not isinstance(checkpointer, PostgresCheckpointer):
        return False
    queue = QueueClient(checkpointer)
    try:
        status = (await queue.status(session_id)).status
    except SessionNotFound:
        return False
    if status is None:
        return False
    if not await queue.retry(session_id):
        raise SessionError(
            f"session {session_id!r} is {status} in the work queue: nothing to retry",
            help="Only a session that went dead, failed or was cancelled is queued again.",
        )
    return True


async def cmd_cancel(args: argparse.Namespace) -> int:
    """Ask a ``weavegraph serve`` to cancel SESSION's run in progress."""
    from ._remote import cancel_remote_run

    session_id = validate_session_id(args.session)
    message = await cancel_remote_run(args.server, session_id, args.token)
    stdout_console().print(Text(message))
    return 0
