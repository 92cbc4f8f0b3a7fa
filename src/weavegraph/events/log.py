"""Reading a session's stored event log, and following it while runs add to it.

Events are stored with the step that emitted them, so the log is the one source every reader
shares: ``AppRunner.events`` and the web server's SSE streams read it, whichever process runs the
session. :func:`follow` polls the store every ``poll`` seconds and is woken at once when this
process commits a step of the session (:func:`ring`, called by the run loop's save path).

A follower ends after the log's last event when that is a stream end and no run of the session is
in progress here. A log that ends without a stream end while nothing is added for
``stale_after`` seconds belongs to a run that died (a killed process): the follower then ends with
a stream end it makes up, ``status=stopped``, which has no ``seq`` (it is not stored).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ..status import RunStatus
from .model import is_stream_end_json, stream_end_event

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer

__all__ = [
    "POLL_S",
    "RESERVED_MAX",
    "STALE_AFTER_ENV",
    "LiveEvents",
    "follow",
    "last_run_start",
    "last_seq",
    "read",
    "ring",
    "stale_after_default",
]

POLL_S: Final = 0.25
"""How often a follower looks for events committed by another process."""
READ_BATCH: Final = 1000
"""Events read from the store at a time."""
STALE_AFTER_S: Final = 30.0
"""Seconds without a stored step or event after which a log without a stream end is a dead run."""
STALE_AFTER_ENV: Final = "WEAVEGRAPH_STALE_RUN_SECONDS"
RESERVED_MAX: Final = 3
"""The most seqs a saved cursor reserves for the events of a run after its last step."""
"""Overrides :data:`STALE_AFTER_S` (environment, else ``.env``)."""

_log = logging.getLogger(__name__)

# --- the commit bell: wakes followers of a session when this process stores its events --------

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]
_waiters: dict[str, list[_Waiter]] = {}
_waiters_lock = threading.Lock()


def ring(session_id: str) -> None:
    """Wake every follower of ``session_id`` in this process (new events were stored)."""
    with _waiters_lock:
        waiting = _waiters.pop(session_id, None)
    for loop, future in waiting or ():
        loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait(session_id: str, seconds: float) -> None:
    """Until :func:`ring` rings for ``session_id`` or ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    entry = (loop, future)
    with _waiters_lock:
        _waiters.setdefault(session_id, []).append(entry)
    try:
        await asyncio.wait_for(future, seconds)
    except TimeoutError:
        pass
    finally:
        with _waiters_lock:
            waiting = _waiters.get(session_id)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del _waiters[session_id]


# --- reading --------------------------------------------------------------------------------


def stale_after_default() -> float:
    """:data:`STALE_AFTER_S`, or the number of seconds in ``WEAVEGRAPH_STALE_RUN_SECONDS``."""
    from ..config import getenv

    text = getenv(STALE_AFTER_ENV)
    if not text:
        return STALE_AFTER_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        from ..errors import ConfigError

        raise ConfigError(f"{STALE_AFTER_ENV} must be a number of seconds >= 0, got {text!r}")
    return value


async def read(
    checkpointer: Checkpointer, session_id: str, after: int = -1
) -> AsyncIterator[dict[str, Any]]:
    """The stored events with ``seq > after``, in seq order, read in batches."""
    while True:
        batch = await checkpointer.load_events(session_id, after, limit=READ_BATCH)
        for event in batch:
            yield event
        if len(batch) < READ_BATCH:
            return
        after = _seq(batch[-1])


async def last_run_start(
    checkpointer: Checkpointer, session_id: str, *, upcoming: bool = False
) -> int:
    """The seq the session's last run starts after: the stream end before the one that ends the
    log, or the last stream end when the log does not end with one (a run goes on); -1: none.
    ``upcoming``: a run is queued (or claimed, not yet stored anything): it starts after the
    last stream end."""
    previous = last = end = -1
    async for event in read(checkpointer, session_id):
        end = _seq(event)
        if is_stream_end_json(event):
            previous, last = last, end
    return previous if last == end and not upcoming else last


async def last_seq(checkpointer: Checkpointer, session_id: str, reserved: int | None = None) -> int:
    """The seq of the session's last stored event (-1: none). ``reserved``: the ``next_seq`` its
    latest checkpoint's cursor reserved (read from storage when not given), so only the end of
    the log is read, unless the latest steps stored no event at all."""
    if reserved is None:
        latest = await checkpointer.load_latest(session_id)
        value: object = latest.cursor.get("next_seq") if latest is not None else None
        reserved = value if isinstance(value, int) else 0
    # Every event before the reserved seqs is stored with the checkpoint: the window holds the
    # latest step's last event and whatever followed it.
    start = max(reserved - 2 - RESERVED_MAX, -1)
    for after in (start, -1) if start > -1 else (-1,):
        end = -1
        async for event in read(checkpointer, session_id, after):
            end = _seq(event)
        if end > -1:
            return end
    return -1


LiveEvents = Callable[[], Sequence[dict[str, Any]]]
"""Events of this process's run not stored yet (LLM chunks of the step in flight), oldest first."""
Running = Callable[[], bool | Awaitable[bool]]
"""Whether a run of the session is in progress or about to start (it may ask the database)."""


async def follow(
    checkpointer: Checkpointer,
    session_id: str,
    *,
    after: int = -1,
    running: Running = lambda: False,
    poll: float = POLL_S,
    stale_after: float | None = None,
    live: LiveEvents | None = None,
) -> AsyncIterator[tuple[dict[str, Any], bool]]:
    """The stored events after ``after``, then each newly stored one, until the stream ends:
    ``(event, True)``. With ``live``, its events newer than any stored come in between as
    ``(event, False)`` (and later again as stored, once their step commits).

    ``running()`` says whether a run of the session is in progress (in this process, or queued
    for or claimed by a worker): its stream end is then awaited, whatever the log holds so far. See the module docstring for how a
    follower ends.
    """
    stale = stale_after_default() if stale_after is None else stale_after
    ended, last_time = await _before(checkpointer, session_id, after)
    ahead = after  # the newest seq yielded, stored or live
    while True:
        got = False
        async for event in read(checkpointer, session_id, after):
            got = True
            after = _seq(event)
            ahead = max(ahead, after)
            ended = is_stream_end_json(event)
            last_time = _time(event) or last_time
            yield event, True
        if got:
            continue  # until a read finds nothing new
        if live is not None:
            for event in live():
                if _seq(event) > ahead:
                    ahead = _seq(event)
                    yield event, False
        if await _ask(running):
            await _wait(session_id, poll)
            continue
        if ended:
            return
        end = await _dead_run_end(checkpointer, session_id, last_time, stale)
        if end is not None:
            yield end, False
            return
        await _wait(session_id, poll)


async def _before(
    checkpointer: Checkpointer, session_id: str, after: int
) -> tuple[bool, datetime | None]:
    """Whether the event at ``after`` (where a follower starts) is a stream end, and its time."""
    if after < 0:
        return False, None
    found = await checkpointer.load_events(session_id, after - 1, limit=1)
    if not found or _seq(found[0]) != after:
        return False, None
    return is_stream_end_json(found[0]), _time(found[0])


async def _dead_run_end(
    checkpointer: Checkpointer, session_id: str, last_time: datetime | None, stale: float
) -> dict[str, Any] | None:
    """A made-up stream end (``status=stopped``) when the session's run looks dead, else None.

    Dead: nothing stored for ``stale`` seconds (neither an event nor a step) and its log has no
    stream end after its last event. An unknown (say, deleted) session ends at once.
    """
    now = datetime.now(UTC)
    if last_time is not None and (now - last_time).total_seconds() < stale:
        return None
    latest = await checkpointer.load_latest(session_id)
    if latest is not None:
        newest = latest.created_at if last_time is None else max(latest.created_at, last_time)
        if (now - newest).total_seconds() < stale:
            return None
    step = latest.step if latest is not None else 0
    _log.info("session %s: its run left no stream end; ending its stream as stopped", session_id)
    return stream_end_event(session_id, RunStatus.STOPPED, step).to_json_value()


async def _ask(running: Running) -> bool:
    answer = running()
    return await answer if inspect.isawaitable(answer) else answer


def _seq(event: dict[str, Any]) -> int:
    seq = event.get("seq")
    return seq if isinstance(seq, int) else -1


def _time(event: dict[str, Any]) -> datetime | None:
    stamp = event.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
