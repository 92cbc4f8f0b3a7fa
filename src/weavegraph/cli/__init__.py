"""The ``weavegraph`` command: ``main(argv)`` returns the exit status (0, 1 failed, 2 usage)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from ..errors import ConfigError, GraphCompileError, InvalidSessionId, WeavegraphError
from ._output import show_error
from ._parser import build_parser

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    try:
        _configure_logging()  # a bad WEAVEGRAPH_LOG is a diagnostic too
        return _dispatch(args)
    # What was typed (or the graph it names) is wrong: a usage error, as documented.
    except (ConfigError, InvalidSessionId, GraphCompileError) as exc:
        show_error(exc, debug=debug)
        return EXIT_USAGE
    except WeavegraphError as exc:
        show_error(exc, debug=debug)
        return EXIT_FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):  # a second Ctrl-C: stopped at once
        return 130
    except Exception as exc:
        show_error(exc, debug=debug)
        return EXIT_FAILED


def _configure_logging() -> None:
    # WEAVEGRAPH_LOG directives; configure_logging is provided by the runtime package.
    import weavegraph

    configure = getattr(weavegraph, "configure_logging", None)
    if callable(configure):
        configure()


def _dispatch(args: argparse.Namespace) -> int:
    # Command modules are imported on use: `graph` must not pay for the web or database stack.
    command: str = args.command
    if command == "graph":
        from ._graph import cmd_graph

        return cmd_graph(args)
    if command == "serve":
        from ._serve import cmd_serve

        return cmd_serve(args)
    if command == "worker":
        from ._worker import cmd_worker

        return cmd_worker(args)
    if command == "sessions" and args.action in ("fork", "edit", "retry", "cancel"):
        from . import _session_ops

        handler = {
            "fork": _session_ops.cmd_fork,
            "edit": _session_ops.cmd_edit,
            "retry": _session_ops.cmd_retry,
            "cancel": _session_ops.cmd_cancel,
        }[args.action]
        return asyncio.run(handler(args))
    if command in ("sessions", "db"):
        from . import _storage

        return asyncio.run(
            _storage.cmd_sessions(args) if command == "sessions" else _storage.cmd_db(args)
        )
    from . import _run

    handler = {"demo": _run.cmd_demo, "run": _run.cmd_run, "resume": _run.cmd_resume}[command]
    return asyncio.run(handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
