"""Calling one node: retries per its RetryPolicy, its timeout, sync nodes in a worker thread."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from .context import NodeContext
from .graph.spec import NodeSpec
from .state import StateSnapshot

__all__ = ["attempts"]

# Node calls are the runner's work: their retries log under its name.
_log = logging.getLogger("weavegraph.runner")


async def attempts(node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    """Call the node, retrying per its RetryPolicy (each attempt gets the full timeout)."""
    attempt = 1
    while True:
        try:
            return await _call(node, snapshot, ctx)
        except Exception as exc:
            policy = node.retry
            if policy is None or not policy.should_retry(exc, attempt):
                raise
            attempt += 1
            delay = policy.delay_before(attempt)
            # Only on the failure path, so logging's own level check is cheap enough here.
            _log.warning(
                "session %s step %d: node %r failed (%s: %s); retry %d/%d in %.3gs",
                ctx.session_id,
                ctx.step,
                node.id,
                type(exc).__name__,
                exc,
                attempt - 1,
                policy.max_attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)


async def _call(node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    if node.timeout is None:
        return await _invoke(node, snapshot, ctx)
    deadline = asyncio.timeout(node.timeout)
    try:
        async with deadline:
            return await _invoke(node, snapshot, ctx)
    except TimeoutError:
        if deadline.expired():
            raise TimeoutError(f"node {node.id!r} timed out after {node.timeout}s") from None
        raise


async def _invoke(node: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    if node.is_async:
        result: Any = node.call(snapshot, ctx)
        if inspect.isawaitable(result):
            result = await result
        return result
    # Sync nodes run in a worker thread so they cannot block the event loop.
    return await asyncio.to_thread(node.call, snapshot, ctx)
