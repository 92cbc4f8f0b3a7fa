"""The read side of the SQLite store and its small encoders: steps rows, the log, extra deltas.

Plain functions over a connection (the caller holds the transaction); split from ``_sqlite_store``
to keep each module small.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from ..errors import CheckpointError
from ..state import VersionedState
from . import _codec as codec
from ._codec import MAX_CHAIN
from ._model import Checkpoint

MESSAGES, ERRORS = "messages", "errors"

STEP_COLUMNS = (
    "created_at, ran_nodes, skipped_nodes, updated_channels, frontier, versions, cursor, "
    "msg_start, msg_count, err_start, err_count, extra_base, extra_data"
)


def load_step(conn: sqlite3.Connection, location: str, sid: str, step: int) -> Checkpoint | None:
    row = conn.execute(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE session_id = ? AND step = ?", (sid, step)
    ).fetchone()
    if row is None:
        return None
    (created, ran, skipped, updated, frontier, versions, cursor,
     msg_start, msg_count, err_start, err_count, base, data) = row  # fmt: skip
    extra = resolve_extra(conn, location, sid, cast("int | None", base), cast("bytes | None", data))
    if extra is None:
        return None  # its delta base was deleted by hand; only prune() keeps bases intact
    state = VersionedState(
        messages=codec.decode_messages(
            read_log(conn, location, sid, MESSAGES, msg_start, msg_count)
        ),
        extra=codec.decode_extra(extra),
        errors=codec.decode_errors(read_log(conn, location, sid, ERRORS, err_start, err_count)),
        versions=codec.loads(versions),
    )
    return Checkpoint(
        session_id=sid,
        step=step,
        state=state,
        frontier=codec.names(frontier),
        ran_nodes=codec.names(ran),
        skipped_nodes=codec.names(skipped),
        updated_channels=codec.names(updated),
        cursor=codec.decode_cursor(cursor),
        created_at=codec.from_sqlite_time(created),
    )


def read_log(
    conn: sqlite3.Connection, location: str, sid: str, channel: str, start: int, count: int
) -> list[bytes]:
    if count == 0:
        return []
    rows = conn.execute(
        "SELECT item FROM channel_log WHERE session_id = ? AND channel = ? "
        "AND idx >= ? AND idx < ? ORDER BY idx",
        (sid, channel, start, start + count),
    ).fetchall()
    if len(rows) != count:
        raise CheckpointError(f"{location}: the {channel} log of {sid!r} is incomplete")
    return [cast("bytes", item) for (item,) in rows]


def extra_at(conn: sqlite3.Connection, location: str, sid: str, step: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT extra_base, extra_data FROM steps WHERE session_id = ? AND step = ?",
        (sid, step),
    ).fetchone()
    return None if row is None else resolve_extra(conn, location, sid, row[0], row[1])


def resolve_extra(
    conn: sqlite3.Connection, location: str, sid: str, base: int | None, data: bytes | None
) -> dict[str, Any] | None:
    """Follow delta bases back to a snapshot and replay; None when a base row is missing."""
    deltas: list[Mapping[str, Any]] = []
    for _ in range(MAX_CHAIN * 4 + 8):
        if base is None:
            if data is None:
                raise CheckpointError(f"{location}: a step of {sid!r} has no extra data")
            extra = cast("dict[str, Any]", codec.loads(data))
            for delta in reversed(deltas):
                codec.apply_delta(extra, delta)
            return extra
        if data is not None:
            deltas.append(cast("Mapping[str, Any]", codec.loads(data)))
        row = conn.execute(
            "SELECT extra_base, extra_data FROM steps WHERE session_id = ? AND step = ?",
            (sid, base),
        ).fetchone()
        if row is None:
            return None
        base, data = cast("tuple[int | None, bytes | None]", row)
    raise CheckpointError(f"{location}: the extra delta chain of {sid!r} is too long")


def row_exists(conn: sqlite3.Connection, sid: str, step: int) -> bool:
    found = conn.execute(
        "SELECT 1 FROM steps WHERE session_id = ? AND step = ?", (sid, step)
    ).fetchone()
    return found is not None


def encode_head(
    cp: Checkpoint, msg_start: int, err_start: int, cursor: bytes, extra: bytes | None
) -> bytes:
    """``codec.encode_head`` with the already-encoded cursor (shared with the steps row) spliced
    in, and the extra when it is small (then loading the head reads no other table)."""
    fields = codec.dumps(
        {
            "step": cp.step,
            "created_at": codec.utc(cp.created_at).isoformat(),
            "frontier": cp.frontier,
            "ran": cp.ran_nodes,
            "skipped": cp.skipped_nodes,
            "updated": cp.updated_channels,
            "versions": cp.state.versions,
            "messages": [msg_start, len(cp.state.messages)],
            "errors": [err_start, len(cp.state.errors)],
        }
    )
    tail = b',"cursor":' + cursor + (b',"extra":' + extra if extra is not None else b"") + b"}"
    return fields[:-1] + tail


_time_cache: list[tuple[int | None, str]] = [(None, "")]


def time_text(moment: datetime) -> str:
    """``codec.to_sqlite_time`` (whole seconds), remembered for the current second (strftime
    would otherwise run twice per save)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _second_text(int(moment.timestamp() // 1))


def now_text() -> str:
    """``time_text`` of the current time."""
    return _second_text(int(time.time()))


def _second_text(stamp: int) -> str:
    cached = _time_cache[0]
    if cached[0] == stamp:
        return cached[1]
    text = datetime.fromtimestamp(stamp, UTC).strftime(codec.SQLITE_TIME)
    _time_cache[0] = (stamp, text)
    return text
