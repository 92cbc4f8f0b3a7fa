"""``weavegraph serve``: the web API and page on uvicorn."""

from __future__ import annotations

import argparse
import os

from ..checkpoint._model import Checkpointer
from ..errors import ConfigError
from ._output import stderr_console
from ._storage import open_from_args
from ._target import load_app


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..web import create_app
    except ImportError as exc:  # the web extra is optional
        raise ConfigError(
            f"the web server needs the 'web' extra: {exc}",
            help="pip install 'weavegraph[web]'",
        ) from None
    app = load_app(args.target)

    async def open_checkpointer() -> Checkpointer:
        return await open_from_args(args)

    web = create_app(app, open_checkpointer)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(
        "WEAVEGRAPH_API_TOKEN"
    ):
        stderr_console().print(
            f"[yellow]warning: listening on {args.host} without WEAVEGRAPH_API_TOKEN: anyone who "
            "can reach this port can start runs[/]"
        )
    stderr_console().print(
        f"[bold]weavegraph[/] serving {args.target} on http://{args.host}:{args.port}"
    )
    uvicorn.run(
        web,
        host=args.host,
        port=args.port,
        log_level="info" if getattr(args, "debug", False) else "warning",
        timeout_graceful_shutdown=15,
    )
    return 0
