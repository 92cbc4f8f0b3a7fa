"""``weavegraph sessions ...`` and ``weavegraph db ...``, and opening the checkpointer from flags."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from ..checkpoint.base import (
    Checkpoint,
    Checkpointer,
    Maintainable,
    PruneResult,
    StepInfo,
    StorageStats,
)
from ..config import CheckpointerType, checkpointer_type
from ..errors import CheckpointError, ConfigError, SessionNotFound
from ..runtime.plan import cursor_of
from ..runtime.values import node_path, validate_session_id
from ..session_status import describe
from ._output import (
    history_table,
    print_json,
    sessions_table,
    state_panel,
    stderr_console,
    stdout_console,
)


async def open_from_args(args: argparse.Namespace, *, must_exist: bool = False) -> Checkpointer:
    """The checkpointer the flags ask for, with the usual database URL resolution.

    ``must_exist``: commands that only read or manage stored data refuse a SQLite file that is
    not there, instead of leaving a new empty database behind (a mistyped --db, a wrong folder).
    """
    from .. import config

    kind = checkpointer_type(args.checkpointer, args.db)
    if must_exist and kind is CheckpointerType.SQLite:
        _require_sqlite_file(config.resolve_sqlite_url(args.db))
    return await config.open_checkpointer(kind, db_url=args.db)


def storage_flags(args: argparse.Namespace) -> str:
    """The ``--db`` / ``--checkpointer`` flags to repeat in a hint, so it names the same database."""
    flags = ""
    if args.db:
        flags += f" --db {shlex.quote(args.db)}"  # a URL may hold ?, & or spaces
    if args.checkpointer and args.checkpointer != "sqlite":
        flags += f" --checkpointer {args.checkpointer}"
    return flags


def _require_sqlite_file(url: str) -> None:
    from ..checkpoint.sqlite import sqlite_path

    path = sqlite_path(url)
    if path != ":memory:" and not Path(path).exists():
        raise CheckpointError(
            f"no weavegraph database at {path}",
            help="Nothing is stored there yet: check --db, WEAVEGRAPH_SQLITE_URL, SQLITE_DB_NAME "
            "and the working directory, or run a workflow first (weavegraph demo).",
        )


# --- sessions ----------------------------------------------------------------------------------


async def cmd_sessions(args: argparse.Namespace) -> int:
    if getattr(args, "session", None) is not None:
        validate_session_id(args.session)  # a usage error, before any database is opened
    checkpointer = await open_from_args(args, must_exist=True)
    try:
        return await _sessions_action(checkpointer, args)
    finally:
        await checkpointer.close()


async def _sessions_action(checkpointer: Checkpointer, args: argparse.Namespace) -> int:
    out = stdout_console()
    if args.action == "list":
        infos = [await describe(checkpointer, info) for info in await checkpointer.list_sessions()]
        if args.json:
            print_json([_info_json(info) for info in infos])
        else:
            out.print(sessions_table(infos))
        return 0
    session_id: str = args.session
    if args.action == "delete":
        if not await checkpointer.delete_session(session_id):
            raise SessionNotFound(session_id)
        out.print(f"deleted session {session_id}")
        return 0
    latest = await checkpointer.load_latest(session_id)
    if latest is None:
        raise SessionNotFound(session_id)
    if args.action == "show":
        _show(latest, as_json=args.json)
    else:
        steps = await checkpointer.history(session_id)
        limit: int | None = args.limit
        _show_history(session_id, steps[-limit:] if limit else steps, as_json=args.json)
    return 0


def _show(latest: Checkpoint, *, as_json: bool) -> None:
    """``sessions show``: the latest state, and what the session waits for or runs next."""
    session_id = latest.session_id
    interrupt = cursor_of(latest).interrupt  # a node's ctx.interrupt waiting for an answer
    if as_json:
        print_json(
            {
                "session_id": session_id,
                "step": latest.step,
                "frontier": list(latest.frontier),
                "state": latest.state.to_json_value(),
                "interrupt": interrupt,
            }
        )
        return
    title = f"{session_id} at step {latest.step}"
    if interrupt is not None:
        question = orjson.dumps(interrupt.get("value")).decode()
        asker = node_path(interrupt.get("namespace") or None, str(interrupt.get("node")))
        title += f" (waiting: {asker} asks {question})"
    elif latest.frontier:
        title += f" (next: {', '.join(latest.frontier)})"
    else:
        title += " (completed)"
    stdout_console().print(state_panel(latest.state, title=title))


def _show_history(session_id: str, steps: list[StepInfo], *, as_json: bool) -> None:
    """``sessions history``: one row per stored step."""
    if not as_json:
        stdout_console().print(history_table(session_id, steps))
        return
    print_json(
        [
            {
                "step": s.step,
                "created_at": s.created_at.isoformat(),
                "ran_nodes": list(s.ran_nodes),
                "skipped_nodes": list(s.skipped_nodes),
                "updated_channels": list(s.updated_channels),
            }
            for s in steps
        ]
    )


def _info_json(info: Any) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "latest_step": info.latest_step,
        "status": info.status,
        "interrupt": info.interrupt.to_json_value() if info.interrupt is not None else None,
    }


# --- db ----------------------------------------------------------------------------------------


async def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "prune" and args.older_than is None and args.keep_last is None:
        raise ConfigError(
            "db prune needs --older-than and/or --keep-last",
            help="For example: weavegraph db prune --older-than 30d --keep-last 100",
        )
    if args.action == "prune" and args.keep_last is not None and args.keep_last < 1:
        raise ConfigError("--keep-last must be at least 1 (a session's latest step is always kept)")
    if checkpointer_type(args.checkpointer, args.db) is CheckpointerType.InMemory:
        raise ConfigError("db commands need a database: use --checkpointer sqlite or postgres")
    err = stderr_console()
    with err.status(f"opening the database ({args.action} migrates it when needed)…"):
        checkpointer = await open_from_args(args, must_exist=args.action != "migrate")
    try:
        return await _db_action(checkpointer, args)
    finally:
        await checkpointer.close()


async def _db_action(checkpointer: Checkpointer, args: argparse.Namespace) -> int:
    out = stdout_console()
    err = stderr_console()
    if not isinstance(checkpointer, Maintainable):
        raise ConfigError(f"{type(checkpointer).__name__} has no storage management")
    maintained, location = checkpointer, checkpointer.location
    if args.action == "stats":
        stats = await maintained.stats()
        value = _as_dict(stats)
        if args.json:
            print_json(value)
        else:
            out.print(_stats_table(location, value))
        return 0
    if args.action == "prune":
        with err.status("counting…" if args.dry_run else "pruning…"):
            result = await maintained.prune(
                older_than=args.older_than, keep_last=args.keep_last, dry_run=args.dry_run
            )
        counts = {k: v for k, v in _as_dict(result).items() if k != "dry_run"}
        details = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())
        if args.dry_run:
            out.print(f"dry run: prune would delete ({details}); nothing was deleted")
        else:
            out.print(f"pruned ({details}); every session's latest checkpoint was kept")
        return 0
    if args.action == "vacuum":
        with err.status("vacuuming…"):
            before, after = await maintained.vacuum()
        out.print(f"vacuumed: {_size(before)} -> {_size(after)}")
        return 0
    version = await maintained.schema_version()
    before = maintained.schema_before
    if before != version:
        out.print(f"migrated {location} from schema {before} to {version}")
    else:
        out.print(f"{location}: schema version {version}, up to date")
    return 0


def _as_dict(value: StorageStats | PruneResult) -> dict[str, Any]:
    return dataclasses.asdict(value)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _stats_table(location: str, stats: dict[str, Any]) -> Table:
    table = Table(title=f"storage: {location}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in stats.items():
        if key == "location":
            continue
        shown = _size(value) if key == "bytes" and isinstance(value, int) else str(value)
        table.add_row(key.replace("_", " "), shown)
    return table
