"""``weavegraph worker``: claim and run queued sessions until SIGTERM drains the worker."""

from __future__ import annotations

import argparse
import asyncio
import signal

from ..config import resolve_postgres_url
from ..errors import ConfigError
from ..queue import Worker, WorkerOptions
from ._output import stderr_console
from ._target import load_target


def cmd_worker(args: argparse.Namespace) -> int:
    app, context = load_target(args.target)
    url = resolve_postgres_url(args.db)
    if not url.startswith(("postgres://", "postgresql://")) and "=" not in url:
        raise ConfigError(f"a worker needs a PostgreSQL database, got {url!r}")
    options = WorkerOptions(
        concurrency=args.concurrency, lease_s=args.lease, max_attempts=args.max_attempts
    )
    worker = Worker(app, url, options, context=context, redis_url=args.redis)
    asyncio.run(_serve(worker, args.target))
    return 0


async def _serve(worker: Worker, target: str) -> None:
    loop = asyncio.get_running_loop()

    def drain(sig: signal.Signals) -> None:
        stderr_console().print(
            f"[yellow]{sig.name}: draining (no new sessions; running ones stop after their "
            "step and go back to the queue)…[/]"
        )
        worker.drain()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, drain, sig)
    stderr_console().print(
        f"[bold]weavegraph[/] worker {worker.name} running {target} "
        f"(concurrency {worker.options.concurrency}, lease {worker.options.lease_s:g}s)"
    )
    try:
        await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
