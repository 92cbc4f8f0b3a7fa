"""``weavegraph sessions ...`` and ``weavegraph db ...``, and opening the checkpointer from flags."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table
from rich.text import Text

from .. import config
from ..checkpoint._model import Checkpointer
from ..errors import ConfigError, SessionNotFound
from ._output import (
    history_table,
    print_json,
    sessions_table,
    state_panel,
    stderr_console,
    stdout_console,
)


def _kind(args: argparse.Namespace) -> str:
    db: str | None = args.db
    if db and db.startswith(("postgres://", "postgresql://")):
        return "postgres"
    if db and db.startswith("sqlite:") and args.checkpointer == "postgres":
        raise ConfigError(f"--checkpointer postgres does not match --db {db}")
    return str(args.checkpointer or "sqlite")


async def open_from_args(args: argparse.Namespace) -> Checkpointer:
    """The checkpointer the flags ask for, with the URL resolution of the SPEC (§4.3)."""
    return await config.open_checkpointer(_kind(args), db_url=args.db)


def _url(args: argparse.Namespace) -> str:
    kind = _kind(args)
    if kind == "memory":
        raise ConfigError("db commands need a database: use --checkpointer sqlite or postgres")
    return config.resolve_url(kind, args.db)


# --- sessions ----------------------------------------------------------------------------------


async def cmd_sessions(args: argparse.Namespace) -> int:
    checkpointer = await open_from_args(args)
    try:
        return await _sessions_action(checkpointer, args)
    finally:
        await checkpointer.close()


async def _sessions_action(checkpointer: Checkpointer, args: argparse.Namespace) -> int:
    out = stdout_console()
    if args.action == "list":
        infos = await checkpointer.list_sessions()
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
        if args.json:
            print_json(
                {
                    "session_id": session_id,
                    "step": latest.step,
                    "frontier": list(latest.frontier),
                    "state": latest.state.to_json_value(),
                }
            )
        else:
            title = f"{session_id} at step {latest.step}"
            if latest.frontier:
                title += f" (next: {', '.join(latest.frontier)})"
            else:
                title += " (completed)"
            out.print(state_panel(latest.state, title=title))
        return 0
    steps = await checkpointer.history(session_id)
    if args.json:
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
    else:
        out.print(history_table(session_id, steps))
    return 0


def _info_json(info: Any) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "latest_step": info.latest_step,
    }


# --- db ----------------------------------------------------------------------------------------


async def cmd_db(args: argparse.Namespace) -> int:
    url = _url(args)
    out = stdout_console()
    err = stderr_console()
    if args.action == "stats":
        stats = await config.stats(url)
        if args.json:
            print_json(stats)
        else:
            out.print(_stats_table(url, stats))
        return 0
    if args.action == "prune":
        if args.older_than is None and args.keep_last is None:
            raise ConfigError(
                "db prune needs --older-than and/or --keep-last",
                help="For example: weavegraph db prune --older-than 30d --keep-last 100",
            )
        if args.keep_last is not None and args.keep_last < 1:
            raise ConfigError("--keep-last must be at least 1 (a session's latest step is kept)")
        with err.status("pruning…"):
            removed = await config.prune(url, older_than=args.older_than, keep_last=args.keep_last)
        out.print(f"removed {removed} step(s); every session's latest checkpoint was kept")
        return 0
    if args.action == "vacuum":
        with err.status("vacuuming…"):
            await config.vacuum(url)
        out.print("vacuumed")
        return 0
    with err.status("migrating…"):
        applied = await config.migrate(url)
    out.print(Text(f"schema up to date ({applied})"))
    return 0


def _stats_table(url: str, stats: Any) -> Table:
    table = Table(title=f"storage: {url}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in dict(stats).items():
        if key == "sessions" and isinstance(value, list):
            continue
        table.add_row(str(key), str(value))
    return table
