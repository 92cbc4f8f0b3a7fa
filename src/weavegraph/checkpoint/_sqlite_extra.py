"""How a SQLite step stores its ``extra``: self-contained, or as one delta over a session snapshot.

A step's ``extra`` never depends on another step's row, so deleting any subset of ``steps`` rows
by hand (the seed's ``DELETE FROM steps WHERE created_at < ...``) leaves every remaining step
loadable. Each step row holds ``(extra_snap, extra_data)``:

- ``extra_snap`` NULL: ``extra_data`` is the whole ``extra`` (small ones: no snapshot is worth it);
- ``extra_snap`` set: it names a row of ``extra_snapshots`` (owned by the session, removed with it
  and garbage-collected by prune/vacuum once no step names it); ``extra_data`` is the delta from
  that snapshot (changed and removed keys), or NULL when the step's ``extra`` equals it.

Deltas are taken against the snapshot, not the previous step, so they accumulate; a new snapshot
is written once the deltas written against the current one outweigh it, which keeps the bytes
stored per snapshot period at most about twice the snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from . import _codec as codec

# A whole extra up to this size (JSON bytes) is stored in the step row itself.
INLINE_EXTRA_MAX = 256
# Deltas may always use this many bytes against a snapshot, however small it is.
MIN_DELTA_BUDGET = 4096


@dataclass(slots=True)
class Snapshot:
    """The snapshot this connection writes a session's deltas against (mutable bookkeeping)."""

    uid: str  # the session row's incarnation it belongs to
    snap_id: int
    extra: Mapping[str, Any]
    size: int
    spent: int = 0  # delta bytes written against it so far
    last_extra: Mapping[str, Any] | None = None
    last_data: bytes | None = None


def plan(
    conn: sqlite3.Connection,
    sid: str,
    uid: str,
    snapshot: Snapshot | None,
    extra: Mapping[str, Any],
    full: bytes,
) -> tuple[int | None, bytes | None, Snapshot | None]:
    """``(extra_snap, extra_data)`` for a step row whose extra is ``extra`` (JSON ``full``).

    Writes a new snapshot row when none is usable; returns the snapshot to keep using.
    """
    if snapshot is not None:
        if extra is snapshot.last_extra:  # frozen: the same object has the same delta
            data = snapshot.last_data
        else:
            delta = codec.extra_delta(snapshot.extra, extra)
            data = None if delta is None else codec.dumps(delta)
        spent = snapshot.spent + (len(data) if data is not None else 0)
        if spent <= max(snapshot.size, MIN_DELTA_BUDGET):
            snapshot.spent, snapshot.last_extra, snapshot.last_data = spent, extra, data
            return snapshot.snap_id, data, snapshot
    if len(full) <= INLINE_EXTRA_MAX:
        return None, full, None
    snap_id = cast(
        "int",
        conn.execute(
            "INSERT INTO extra_snapshots (session_id, extra) VALUES (?, ?)", (sid, full)
        ).lastrowid,
    )
    fresh = Snapshot(uid=uid, snap_id=snap_id, extra=extra, size=len(full), last_extra=extra)
    return snap_id, None, fresh


def snapshot_exists(conn: sqlite3.Connection, sid: str, snap_id: int) -> bool:
    found = conn.execute(
        "SELECT 1 FROM extra_snapshots WHERE id = ? AND session_id = ?", (snap_id, sid)
    ).fetchone()
    return found is not None


def resolve(
    conn: sqlite3.Connection, sid: str, snap_id: int | None, data: bytes | None
) -> dict[str, Any] | None:
    """A step's ``extra`` from its row's two columns; None when its snapshot is gone."""
    if snap_id is None:
        return None if data is None else cast("dict[str, Any]", codec.loads(data))
    row = conn.execute(
        "SELECT extra FROM extra_snapshots WHERE id = ? AND session_id = ?", (snap_id, sid)
    ).fetchone()
    if row is None:
        return None  # only hand-written SQL on extra_snapshots removes one a step names
    extra = cast("dict[str, Any]", codec.loads(row[0]))
    if data is not None:
        codec.apply_delta(extra, cast("Mapping[str, Any]", codec.loads(data)))
    return extra


def collect(conn: sqlite3.Connection, sid: str | None = None) -> int:
    """Delete the snapshots no step names (of session ``sid``, or of all sessions)."""
    if sid is None:
        return conn.execute(
            "DELETE FROM extra_snapshots WHERE id NOT IN "
            "(SELECT extra_snap FROM steps WHERE extra_snap IS NOT NULL)"
        ).rowcount
    return conn.execute(
        "DELETE FROM extra_snapshots WHERE session_id = ? AND id NOT IN "
        "(SELECT extra_snap FROM steps WHERE session_id = ? AND extra_snap IS NOT NULL)",
        (sid, sid),
    ).rowcount
