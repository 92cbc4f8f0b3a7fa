"""The ``weavegraph`` command line: every command, option and help text."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import TypeAlias

_EPILOG = """\
examples:
  weavegraph demo                              run the bundled workflow (weavegraph.db)
  weavegraph run my_flows:app --input "hi"     run your graph, streaming events
  weavegraph sessions list                     what is stored
  weavegraph db prune --older-than 30d --keep-last 100
  weavegraph serve my_flows:app                web view at http://127.0.0.1:8000
  weavegraph worker my_flows:app --db postgresql://db/app   run queued sessions

Databases: --db URL, else WEAVEGRAPH_SQLITE_URL / SQLITE_DB_NAME / sqlite://weavegraph.db
(Postgres: WEAVEGRAPH_POSTGRES_URL / DATABASE_URL). A .env file in this folder is read.
Logging: WEAVEGRAPH_LOG=debug or WEAVEGRAPH_LOG=error,weavegraph=debug.
Exit codes: 0 success, 1 the run or operation failed, 2 usage error."""

TARGET_HELP = (
    "MODULE:ATTR naming a compiled App, a GraphBuilder, or a zero-argument function returning "
    "either (e.g. weavegraph.demo:demo_app)"
)


_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` as a timedelta (a usage error otherwise)."""
    match = _AGE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"--older-than expects a whole number and a unit (s, m, h, d, w), e.g. 30d; got {text!r}"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _version() -> str:
    try:
        return version("weavegraph")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


# argparse does not name the type of add_subparsers() publicly.
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # pyright: ignore[reportPrivateUsage]


def _common() -> argparse.ArgumentParser:
    # Lets --debug follow the subcommand too; SUPPRESS keeps the top-level value when absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    return common


def _storage_options(parser: argparse.ArgumentParser, *, default_kind: str | None = None) -> None:
    group = parser.add_argument_group("storage")
    group.add_argument(
        "--checkpointer",
        choices=("sqlite", "postgres", "memory"),
        help="where checkpoints live (default: the --db URL's kind, else sqlite)",
    )
    group.add_argument(
        "--db",
        metavar="URL",
        help="database URL, e.g. sqlite://runs.db or postgresql://host/db (overrides the "
        "code-given URL only: WEAVEGRAPH_SQLITE_URL / WEAVEGRAPH_POSTGRES_URL still win)",
    )


def _event_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("events")
    group.add_argument(
        "--events",
        choices=("pretty", "jsonl", "none"),
        default="pretty",
        help="how events are shown while running: readable lines, JSON lines on stdout, or nothing",
    )
    group.add_argument(
        "--trace",
        action="store_true",
        help="also show lifecycle events (steps, node start/finish with durations, checkpoints)",
    )
    group.add_argument(
        "--interrupt-before",
        metavar="NODE",
        action="append",
        default=[],
        help="pause the session before NODE runs (repeatable); continue with `weavegraph resume`",
    )


def _add_demo(commands: _Commands) -> None:
    demo = commands.add_parser(
        "demo",
        parents=[_common()],
        help="run the bundled research-assistant workflow",
        description="Run the bundled workflow: fan-out to parallel researchers, a join, a "
        "streaming fake model, a bounded review loop and a recoverable error. Stored in the "
        "embedded SQLite database (weavegraph.db) unless --db says otherwise.",
    )
    demo.add_argument("--session", metavar="ID", help="session id; an existing session is resumed")
    demo.add_argument("--question", help="the question the demo researches")
    demo.add_argument(
        "--delay",
        type=float,
        default=0.03,
        metavar="SECONDS",
        help="pause per token of the fake model, so the stream is watchable (default 0.03)",
    )
    demo.add_argument(
        "--model",
        metavar="PROVIDER:MODEL",
        help="draft with a real model instead of the fake one, e.g. openai:gpt-4o-mini (any "
        "OpenAI-compatible server: OPENAI_BASE_URL, OPENAI_API_KEY); default: "
        "$WEAVEGRAPH_DEMO_MODEL, else the fake model",
    )
    _storage_options(demo)
    _event_options(demo)


def _add_run(commands: _Commands) -> None:
    run = commands.add_parser(
        "run",
        parents=[_common()],
        help="run a graph from MODULE:ATTR",
        description="Run a graph to completion, checkpointing every step and streaming events.",
    )
    run.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    source = run.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="TEXT", help="start from one user message")
    source.add_argument(
        "--state", metavar="FILE", help="start from a VersionedState JSON file ('-' reads stdin)"
    )
    run.add_argument("--session", metavar="ID", help="session id (default: a new one)")
    _storage_options(run)
    _event_options(run)

    resume = commands.add_parser(
        "resume",
        parents=[_common()],
        help="continue a stored session",
        description="Continue a session from its latest checkpoint (after an interrupt, a "
        "failure or a Ctrl-C). A session waiting in ctx.interrupt needs --answer.",
    )
    resume.add_argument("session", metavar="SESSION", help="the session id")
    resume.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    resume.add_argument(
        "--answer",
        metavar="JSON",
        help="answer the question a node asked with ctx.interrupt: a JSON value, or plain text "
        "(taken as a string); the node runs again with it and the session continues",
    )
    _storage_options(resume)
    _event_options(resume)

    graph = commands.add_parser(
        "graph",
        parents=[_common()],
        help="print a graph as mermaid or dot",
        description="Compile a graph (reporting every problem) and print it.",
    )
    graph.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")


def _add_sessions(commands: _Commands) -> None:
    sessions = commands.add_parser(
        "sessions",
        parents=[_common()],
        help="list, inspect and delete stored sessions",
        description="Stored sessions.",
    )
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", parents=[_common()], help="every session with its latest step"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _storage_options(listing)
    for name, text in (
        ("show", "a session's latest state"),
        ("history", "a session's steps, oldest first"),
        ("delete", "delete a session and all its steps"),
    ):
        action = actions.add_parser(
            name, parents=[_common()], help=text, description=text[0].upper() + text[1:] + "."
        )
        action.add_argument("session", metavar="SESSION")
        if name != "delete":
            action.add_argument("--json", action="store_true", help="print JSON")
        if name == "history":
            action.add_argument(
                "--limit", type=_positive, metavar="N", help="only the newest N steps"
            )
        _storage_options(action)
    _add_session_changes(actions)


def _add_session_changes(actions: _Commands) -> None:
    """``sessions fork|edit|retry|cancel``: the verbs that change a stored session."""
    fork = actions.add_parser(
        "fork",
        parents=[_common()],
        help="copy a session as it was after a step into a new session",
        description="Start a new session from SESSION as it was after --step (its history up to "
        "there is copied; SESSION is unchanged). Continue the copy with `weavegraph resume`.",
    )
    fork.add_argument("session", metavar="SESSION")
    fork.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    fork.add_argument(
        "--step", type=_non_negative, required=True, metavar="N", help="the step to fork from"
    )
    fork.add_argument("--new-id", metavar="ID", help="the new session's id (default: a new one)")
    edit = actions.add_parser(
        "edit",
        parents=[_common()],
        help="change a stored session's state (recorded as its own step)",
        description="Apply an update to SESSION's latest state through the graph's reducers, "
        "recorded as a new step, as a node's update would be. Messages and errors are appended; "
        "an extra key set to null is deleted.",
    )
    edit.add_argument("session", metavar="SESSION")
    edit.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    edit.add_argument(
        "--update",
        metavar="JSON",
        help='the update as JSON: {"messages": [{"role", "content"}], "extra": {...}, '
        '"errors": [{"message"}]} (each key optional)',
    )
    edit.add_argument(
        "--extra",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="set one extra key (repeatable); VALUE is JSON, or else taken as text",
    )
    for action in (fork, edit):
        _storage_options(action)
    retry = actions.add_parser(
        "retry",
        parents=[_common()],
        help="run a failed, cancelled or stopped session again from its latest checkpoint",
        description="Run SESSION again from its latest checkpoint: a failed step runs again, a "
        "cancelled or stopped run continues where it was. A completed session, or one waiting "
        "for an answer (use `weavegraph resume --answer`), is refused.",
    )
    retry.add_argument("session", metavar="SESSION")
    retry.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    _storage_options(retry)
    _event_options(retry)
    cancel = actions.add_parser(
        "cancel",
        parents=[_common()],
        help="cancel a session's run in progress on a `weavegraph serve`",
        description="Ask the server at --server to cancel SESSION's run now (the step in flight "
        "is not committed; `weavegraph sessions retry` continues it later). A run in this "
        "terminal stops with Ctrl-C instead.",
    )
    cancel.add_argument("session", metavar="SESSION")
    cancel.add_argument(
        "--server",
        metavar="URL",
        default="http://127.0.0.1:8000",
        help="the server's address (default http://127.0.0.1:8000)",
    )
    cancel.add_argument(
        "--token", metavar="TOKEN", help="its API token (default: WEAVEGRAPH_API_TOKEN)"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_positive.__name__ = "positive integer"  # argparse names the type in its message
_non_negative.__name__ = "step number (0 or more)"


def _add_db(commands: _Commands) -> None:
    db = commands.add_parser(
        "db",
        parents=[_common()],
        help="storage management: stats, prune, vacuum, migrate",
        description="Storage.",
    )
    actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = actions.add_parser(
        "stats", parents=[_common()], help="size, sessions and steps per session"
    )
    stats.add_argument("--json", action="store_true", help="print JSON")
    prune = actions.add_parser(
        "prune",
        parents=[_common()],
        help="delete old steps (never a session's latest checkpoint)",
        description="Delete steps older than --older-than and/or beyond the newest --keep-last "
        "steps of each session. A session's latest checkpoint is always kept, so every session "
        "stays resumable.",
    )
    prune.add_argument(
        "--older-than", type=parse_age, metavar="AGE", help="e.g. 30d, 12h, 90m, 3600s"
    )
    prune.add_argument("--keep-last", type=int, metavar="N", help="newest steps kept per session")
    prune.add_argument(
        "--dry-run",
        action="store_true",
        help="count what would be deleted and delete nothing",
    )
    actions.add_parser(
        "vacuum", parents=[_common()], help="reclaim free space (SQLite VACUUM / Postgres VACUUM)"
    )
    actions.add_parser("migrate", parents=[_common()], help="apply pending schema migrations")
    for action in actions.choices.values():
        _storage_options(action)


def _add_serve(commands: _Commands) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[_common()],
        help="web server: start runs, stream events (SSE), browse sessions",
        description="Serve a graph over HTTP with live Server-Sent Events and an HTML page. "
        "Set WEAVEGRAPH_API_TOKEN to require 'Authorization: Bearer <token>' on /api/*. "
        "Requests must name this server in Host/Origin (see --allowed-hosts), and requests "
        "that change something must be 'Content-Type: application/json'. With --queue (on "
        "PostgreSQL) the server runs nothing itself: runs, answers, edits and cancels go to the "
        "queue for `weavegraph worker` processes on any machine, and any number of such servers "
        "stream any session from the database.",
    )
    serve.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=parse_port, default=8000, help="port (default 8000; 0 = any free)"
    )
    serve.add_argument(
        "--allowed-hosts",
        metavar="HOSTS",
        help="comma-separated host[:port] names this server may be reached by, besides its "
        "address and localhost (default: WEAVEGRAPH_ALLOWED_HOSTS; '*' allows any)",
    )
    serve.add_argument(
        "--queue",
        action="store_true",
        help="only enqueue: `weavegraph worker` processes run the sessions (PostgreSQL only)",
    )
    _redis_option(serve, "wake event streams")
    _storage_options(serve)


def _redis_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--redis",
        metavar="URL",
        help=f"also {what} through Redis pub/sub, e.g. redis://127.0.0.1:6379/0 (optional: "
        "PostgreSQL's NOTIFY and polling work without it; needs the 'redis' extra)",
    )


def _add_worker(commands: _Commands) -> None:
    worker = commands.add_parser(
        "worker",
        parents=[_common()],
        help="run queued sessions from PostgreSQL (any number of workers, any machines)",
        description="Claim queued sessions from a PostgreSQL database and run them, up to "
        "--concurrency at a time. Each claim holds a lease the worker renews; a worker that dies "
        "or is cut off loses it and another worker continues the session from its last "
        "committed step. SIGTERM or Ctrl-C drains: no new claims, running sessions stop after "
        "their step in flight and go back to the queue.",
    )
    worker.add_argument("target", metavar="MODULE:ATTR", help=TARGET_HELP)
    worker.add_argument(
        "--db",
        metavar="URL",
        help="the PostgreSQL URL (default: WEAVEGRAPH_POSTGRES_URL, else DATABASE_URL)",
    )
    worker.add_argument(
        "--concurrency", type=_positive, default=4, metavar="N", help="sessions at once (default 4)"
    )
    worker.add_argument(
        "--lease",
        type=parse_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long a claim lasts without a heartbeat, e.g. 30 or 30s (default 30)",
    )
    worker.add_argument(
        "--max-attempts",
        type=_positive,
        default=3,
        metavar="N",
        help="claims of one session that may die in a row before it is marked dead (default 3)",
    )
    _redis_option(worker, "hear of queued work and announce committed steps")


def parse_seconds(text: str) -> float:
    """``--lease``: seconds, as ``30`` or ``30s`` (more than 0.3)."""
    value = float(text.strip().removesuffix("s"))
    if not value > 0.3:
        raise ValueError(text)
    return value


parse_seconds.__name__ = "duration in seconds"


def parse_port(text: str) -> int:
    """``--port``: 0 (any free port) to 65535; argparse turns the ValueError into exit 2."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


parse_port.__name__ = "port"  # argparse names the type in its message: "invalid port value"


def build_parser() -> argparse.ArgumentParser:
    """The full parser (exits with status 2 on usage errors, as argparse does)."""
    parser = argparse.ArgumentParser(
        prog="weavegraph",
        description="Concurrent, stateful, graph-driven workflows: run, resume, inspect, serve.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"weavegraph {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo(commands)
    _add_run(commands)
    _add_sessions(commands)
    _add_db(commands)
    _add_serve(commands)
    _add_worker(commands)
    return parser
