"""The ``weavegraph`` command: ``main(argv)`` returns the exit status (0, 1 failed, 2 usage)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from ..errors import ConfigError, WeavegraphError
from ..logging import configure_logging
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
    configure_logging()
    try:
        return _dispatch(args)
    except ConfigError as exc:
        show_error(exc, debug=debug)
        return EXIT_USAGE
    except WeavegraphError as exc:
        show_error(exc, debug=debug)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        show_error(exc, debug=debug)
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace) -> int:
    from . import _run, _serve, _storage

    command: str = args.command
    if command == "graph":
        return _run.cmd_graph(args)
    if command == "serve":
        return _serve.cmd_serve(args)
    handler = {
        "demo": _run.cmd_demo,
        "run": _run.cmd_run,
        "resume": _run.cmd_resume,
        "sessions": _storage.cmd_sessions,
        "db": _storage.cmd_db,
    }[command]
    return asyncio.run(handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
