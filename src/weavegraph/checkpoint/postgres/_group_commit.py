"""Group commit: saves of many sessions that arrive together are committed in one transaction.

A PostgreSQL commit waits for the WAL to reach disk (milliseconds), far longer than the few
statements of a save, so with many sessions running at once the commits, not the statements,
would bound throughput. :class:`GroupCommit` queues each save; up to ``max_batches`` batches are
in flight at once (one per pooled connection), each taking every save queued when it starts.

``commit`` may refuse some items of a batch while the others commit (it returns each item's
refusal, or None when all committed). A batch that fails as a whole is retried save by save, so
one broken save fails alone and the others still commit. A save whose caller was cancelled before its batch started is dropped; once
its batch started, it commits (as a save whose COMMIT was already sent would).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ...errors import CheckpointError

__all__ = ["MAX_BATCH", "GroupCommit", "Refusals"]

T = TypeVar("T")
MAX_BATCH = 25
"""Saves in one transaction at most. It bounds how long a batch's row locks are held, and it
lets the next batch leave while one is in the server: with 50 sessions stepping at once, two
batches of 25 alternate, so this process prepares one while the server commits the other
(measured: +16% sessions/s over batches of 64, which ran the two sides in turn)."""

_Pending = tuple[T, "asyncio.Future[None]"]
Refusals = Sequence[Exception | None] | None
"""What a commit returns: per item, the error that refused it (the others committed); None when
every item committed."""


class GroupCommit(Generic[T]):
    """Runs ``commit(items)`` for batches of the items passed to :meth:`submit`."""

    def __init__(
        self, commit: Callable[[Sequence[T]], Awaitable[Refusals]], max_batches: int
    ) -> None:
        self._commit = commit
        self._max_batches = max(1, max_batches)
        self._queue: list[_Pending[T]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> None:
        """Return once ``item`` is committed; raise what committing it alone raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if len(self._tasks) < self._max_batches:
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await done

    async def aclose(self) -> None:
        """Wait for the batches in flight (their callers are waiting for them)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drain(self) -> None:
        batch: list[_Pending[T]] = []
        try:
            while self._queue:
                batch = [p for p in self._queue[:MAX_BATCH] if not p[1].done()]
                del self._queue[:MAX_BATCH]
                if batch:
                    await self._run(batch)
                batch = []
        finally:
            # Left over only when this task was cancelled: nobody will commit these any more.
            closed = CheckpointError("the checkpointer closed before this was committed")
            for _, done in batch:
                _settle(done, closed)
            if not self._tasks - {asyncio.current_task()}:
                queued, self._queue = self._queue, []
                for _, done in queued:
                    _settle(done, closed)

    async def _run(self, batch: list[_Pending[T]]) -> None:
        try:
            refused = await self._commit([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item, done in batch:  # some save broke the transaction: each on its own
                try:
                    alone = await self._commit((item,))
                except Exception as error:
                    _settle(done, error)
                else:
                    _settle(done, alone[0] if alone else None)
            return
        for index, (_, done) in enumerate(batch):
            _settle(done, refused[index] if refused else None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
