"""``weavegraph serve``: the web API and page on uvicorn."""

from __future__ import annotations

import argparse
import socket

from ..checkpoint.base import Checkpointer
from ..config import CheckpointerType, checkpointer_type, getenv
from ..errors import ConfigError, WeavegraphError
from ._output import stderr_console
from ._storage import open_from_args
from ._target import load_target


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..web import create_app, show_server_log
    except ImportError as exc:  # the web extra is optional
        raise ConfigError(
            f"the web server needs the 'web' extra: {exc}",
            help="pip install 'weavegraph[web]'",
        ) from None
    app, context = load_target(args.target)
    if args.queue:
        _check_queue_storage(args)

    async def open_checkpointer() -> Checkpointer:
        return await open_from_args(args)

    web = create_app(
        app, open_checkpointer, context=context, allowed_hosts=args.allowed_hosts,
        queue=args.queue, redis_url=args.redis,
    )  # fmt: skip
    port = _check_free(args.host, args.port)  # --port 0: the free port chosen, so it can be shown
    if args.host not in ("127.0.0.1", "localhost", "::1") and not getenv("WEAVEGRAPH_API_TOKEN"):
        stderr_console().print(
            f"[yellow]warning: listening on {args.host} without WEAVEGRAPH_API_TOKEN: anyone who "
            "can reach this port can start runs[/]"
        )
    mode = " (queue mode: weavegraph worker processes run the sessions)" if args.queue else ""
    stderr_console().print(
        f"[bold]weavegraph[/] serving {args.target} on http://{args.host}:{port}{mode}"
    )
    show_server_log()  # one line per request and per run start/end
    try:
        uvicorn.run(
            web,
            host=args.host,
            port=port,
            log_level="info" if getattr(args, "debug", False) else "warning",
            timeout_graceful_shutdown=15,
            access_log=False,  # the server's own access lines replace uvicorn's
        )
    except SystemExit as exc:  # uvicorn exits 3 when startup fails (it logged why)
        return 0 if exc.code in (0, None) else 1
    return 0


def _check_queue_storage(args: argparse.Namespace) -> None:
    """``--queue`` on SQLite or in memory: refused before the server starts."""
    kind = checkpointer_type(args.checkpointer, args.db)
    if kind is not CheckpointerType.Postgres:
        raise ConfigError(
            f"--queue needs PostgreSQL (the queue and its workers share it), not {kind.value}",
            help="serve with --db postgresql://... or --checkpointer postgres",
        )


def _check_free(host: str, port: int) -> int:
    """Refuse a busy or unusable address with a diagnostic, before uvicorn logs a traceback;
    return the port (for port 0, the free one the system picked)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise WeavegraphError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                help="Another server may be using the port: choose one with --port (0 = any "
                "free port) or stop the other server.",
            ) from None
        return int(probe.getsockname()[1])
