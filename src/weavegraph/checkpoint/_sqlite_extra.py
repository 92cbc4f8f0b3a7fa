"""How a SQLite step stores its ``extra``: never in terms of another step, so any step can go.

Deleting any subset of ``steps`` rows by hand (the seed's ``DELETE FROM steps WHERE created_at <
...``, foreign keys off) leaves every remaining step loadable, because what a step's ``extra``
needs belongs to the session. Each step row holds ``(extra_ref, extra_data)``:

- ``extra_ref`` NULL: ``extra_data`` is the whole ``extra`` (small ones: a base is not worth it);
- ``extra_ref`` set: it names a row of ``extra_log`` (the session's, like ``channel_log``) holding
  a base ``extra``; ``extra_data`` is the delta from that base, NULL when equal to it.

An ``extra_log`` row is a full snapshot (``base`` NULL) or a delta over an earlier row of the same
log; rows are removed with their session (trigger) and collected by prune/vacuum once no step
reaches them. A step's delta is taken against the current base, so it carries every key changed
since that base: once it carries mostly keys this step did not change, it is moved into the log as
a new base (so stored bytes stay linear in what was written), and once the log's deltas outweigh
the snapshot they start from, a new snapshot is written (so a load reads about twice the size of
its ``extra`` at most).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..errors import CheckpointError
from . import _codec as codec

# A whole extra up to this size (JSON bytes) is stored in the step row itself.
INLINE_EXTRA_MAX = 256
# A step delta is moved into the log once it carries more than this many bytes of keys that the
# step itself did not change.
STALE_MAX = 512
# The log's deltas over a snapshot may always add up to this much, however small the snapshot.
MIN_CHAIN_BUDGET = 4096
MAX_CHAIN = 64


@dataclass(slots=True)
class Base:
    """The ``extra_log`` row this connection writes a session's step deltas against."""

    uid: str  # the session row's incarnation it belongs to
    ref: int
    extra: Mapping[str, Any]
    snapshot_size: int  # of the snapshot its chain starts from
    chain_bytes: int = 0  # of the log deltas between that snapshot and this row
    chain_len: int = 0
    last_extra: Mapping[str, Any] | None = None  # the last step's extra and its delta
    last_data: bytes | None = None


def plan(
    conn: sqlite3.Connection,
    sid: str,
    uid: str,
    base: Base | None,
    extra: Mapping[str, Any],
    full: bytes,
) -> tuple[int | None, bytes | None, Base | None]:
    """``(extra_ref, extra_data)`` for a step whose extra is ``extra`` (JSON ``full``).

    Writes an ``extra_log`` row when the current base no longer serves; returns the base to use
    next (None: none yet).
    """
    if base is not None:
        previous = base.last_extra
        if extra is previous:  # frozen: the same object has the same delta
            return base.ref, base.last_data, base
        delta = codec.extra_delta(base.extra, extra)
        data = None if delta is None else codec.dumps(delta)
        if data is not None and len(full) <= min(len(data), INLINE_EXTRA_MAX):
            return None, full, None  # now small: whole is cheaper than a delta
        if data is None or len(data) <= STALE_MAX or not _mostly_stale(previous, extra, data):
            base.last_extra, base.last_data = extra, data
            return base.ref, data, base
        budget = max(base.snapshot_size, MIN_CHAIN_BUDGET)
        if base.chain_len < MAX_CHAIN and base.chain_bytes + len(data) <= budget:
            ref = _append(conn, sid, base.ref, data)
            moved = Base(
                uid=uid,
                ref=ref,
                extra=extra,
                snapshot_size=base.snapshot_size,
                chain_bytes=base.chain_bytes + len(data),
                chain_len=base.chain_len + 1,
                last_extra=extra,
            )
            return ref, None, moved
    if len(full) <= INLINE_EXTRA_MAX:
        return None, full, None
    ref = _append(conn, sid, None, full)
    return ref, None, Base(uid=uid, ref=ref, extra=extra, snapshot_size=len(full), last_extra=extra)


def _mostly_stale(
    previous: Mapping[str, Any] | None, extra: Mapping[str, Any], data: bytes
) -> bool:
    """Whether ``data`` (a delta from the base) carries over STALE_MAX bytes this step did not
    write (its delta from the previous step is much smaller)."""
    if previous is None:
        return True
    written = codec.extra_delta(previous, extra)
    written_size = 0 if written is None else len(codec.dumps(written))
    return len(data) > 2 * written_size + STALE_MAX


def _append(conn: sqlite3.Connection, sid: str, base: int | None, data: bytes) -> int:
    cursor = conn.execute(
        "INSERT INTO extra_log (session_id, base, data) VALUES (?, ?, ?)", (sid, base, data)
    )
    return cast("int", cursor.lastrowid)


def ref_exists(conn: sqlite3.Connection, sid: str, ref: int) -> bool:
    found = conn.execute(
        "SELECT 1 FROM extra_log WHERE id = ? AND session_id = ?", (ref, sid)
    ).fetchone()
    return found is not None


def resolve(
    conn: sqlite3.Connection, location: str, sid: str, ref: int | None, data: bytes | None
) -> dict[str, Any] | None:
    """A step's ``extra`` from its row's two columns; None when a log row it needs is gone."""
    if ref is None:
        return None if data is None else cast("dict[str, Any]", codec.loads(data))
    deltas: list[bytes] = [] if data is None else [data]
    current: int | None = ref
    for _ in range(MAX_CHAIN * 2 + 8):
        if current is None:
            extra = cast("dict[str, Any]", codec.loads(deltas.pop()))
            for delta in reversed(deltas):
                codec.apply_delta(extra, cast("Mapping[str, Any]", codec.loads(delta)))
            return extra
        row = conn.execute(
            "SELECT base, data FROM extra_log WHERE id = ? AND session_id = ?", (current, sid)
        ).fetchone()
        if row is None:
            return None  # only hand-written SQL on extra_log removes a row a step reaches
        current = cast("int | None", row[0])
        deltas.append(cast("bytes", row[1]))
    raise CheckpointError(f"{location}: the extra log chain of {sid!r} is too long")


_LIVE = (
    "WITH RECURSIVE live(id) AS ("
    "SELECT extra_ref FROM steps WHERE extra_ref IS NOT NULL{steps_filter} "
    "UNION SELECT e.base FROM extra_log e JOIN live ON e.id = live.id WHERE e.base IS NOT NULL) "
    "DELETE FROM extra_log WHERE {log_filter}id NOT IN (SELECT id FROM live)"
)


def collect(conn: sqlite3.Connection, sid: str | None = None) -> int:
    """Delete the ``extra_log`` rows no step reaches (of session ``sid``, or of all sessions)."""
    if sid is None:
        return conn.execute(_LIVE.format(steps_filter="", log_filter="")).rowcount
    statement = _LIVE.format(steps_filter=" AND session_id = ?", log_filter="session_id = ? AND ")
    return conn.execute(statement, (sid, sid)).rowcount
