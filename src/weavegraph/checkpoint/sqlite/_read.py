"""The read side of the SQLite store and its small encoders: steps rows and the log.

Plain functions over a connection (the caller holds the transaction); split from ``_store``
to keep each module small.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from ...errors import CheckpointError
from ...state import VersionedState
from .. import _codec as codec
from ..base import NAMESPACE_SEPARATOR, Checkpoint, SessionInfo, StepInfo
from . import _extra as extras

MESSAGES, ERRORS = "messages", "errors"

STEP_COLUMNS = (
    "created_at, ran_nodes, skipped_nodes, updated_channels, frontier, versions, cursor, "
    "msg_start, msg_count, err_start, err_count, extra_ref, extra_data"
)


def load_step(conn: sqlite3.Connection, location: str, sid: str, step: int) -> Checkpoint | None:
    row = conn.execute(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE session_id = ? AND step = ?", (sid, step)
    ).fetchone()
    if row is None:
        return None
    (created, ran, skipped, updated, frontier, versions, cursor,
     msg_start, msg_count, err_start, err_count, ref, data) = row  # fmt: skip
    extra = extras.resolve(conn, location, sid, cast("int | None", ref), cast("bytes | None", data))
    if extra is None:
        return None  # an extra_log row was deleted by hand (or it was unloadable before v2)
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


@dataclass(frozen=True, slots=True)
class HeadExtra:
    """How the head holds its ``extra``: ``whole`` (its JSON), or as the step row does: the
    ``extra_log`` row ``ref`` and the ``delta`` JSON from it (None: equal to it)."""

    whole: bytes | None = None
    ref: int | None = None
    delta: bytes | None = None

    def json_fields(self) -> bytes:
        if self.whole is not None:
            return b',"extra":' + self.whole
        return b',"extra_ref":%d,"extra_delta":%s' % (self.ref or 0, self.delta or b"null")


def encode_head(
    cp: Checkpoint, msg_start: int, err_start: int, parts: codec.StepJson, extra: HeadExtra
) -> bytes:
    """``codec.encode_head`` from the step fields already encoded for the steps row, with the
    extra spliced in."""
    return codec.head_fields(cp, msg_start, err_start, parts) + extra.json_fields() + b"}"


def load_head_extra(
    conn: sqlite3.Connection,
    location: str,
    sid: str,
    head: Mapping[str, Any],
    legacy: bytes | None,
) -> Mapping[str, Any]:
    """The head's ``extra``: inside it, behind its ``extra_log`` reference, or (a head written by
    schema version before 4) in ``legacy``, the session's ``session_extra`` row."""
    if "extra" in head:
        return cast("Mapping[str, Any]", head["extra"])
    if "extra_ref" not in head:
        return cast("Mapping[str, Any]", codec.loads(legacy)) if legacy else {}
    extra = extras.resolve(conn, location, sid, cast("int", head["extra_ref"]), None)
    if extra is None:
        raise CheckpointError(
            f"{location}: the latest extra of {sid!r} needs an extra_log row that was deleted"
        )
    delta = head.get("extra_delta")
    return extra if delta is None else codec.apply_delta(extra, delta)


_time_cache: list[tuple[int | None, str]] = [(None, "")]


def time_text(moment: datetime) -> str:
    """``codec.to_sqlite_time`` (whole seconds), remembered for the current second (strftime
    would otherwise run twice per save)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _second_text(int(moment.timestamp() // 1))


def now_text() -> str:
    """``time_text`` of the current time with milliseconds, so sessions changed within one second
    still list in the order they changed (SQLite reads ``HH:MM:SS.SSS`` as a time too)."""
    now = time.time()
    second = int(now)
    return f"{_second_text(second)}.{int((now - second) * 1000):03d}"


def _second_text(stamp: int) -> str:
    cached = _time_cache[0]
    if cached[0] == stamp:
        return cached[1]
    text = datetime.fromtimestamp(stamp, UTC).strftime(codec.SQLITE_TIME)
    _time_cache[0] = (stamp, text)
    return text


def read_history(conn: sqlite3.Connection, sid: str) -> list[StepInfo]:
    """The session's steps in order, without their state."""
    rows = conn.execute(
        "SELECT step, created_at, ran_nodes, skipped_nodes, updated_channels FROM steps "
        "WHERE session_id = ? ORDER BY step",
        (sid,),
    ).fetchall()
    return [
        StepInfo(
            step=step,
            created_at=codec.from_sqlite_time(created),
            ran_nodes=codec.names(ran),
            skipped_nodes=codec.names(skipped),
            updated_channels=codec.names(updated),
        )
        for step, created, ran, skipped, updated in rows
    ]


def read_sessions(conn: sqlite3.Connection) -> list[SessionInfo]:
    """Every session with its latest step, oldest first (subgraphs' keys are not sessions)."""
    rows = conn.execute(
        "SELECT id, created_at, updated_at, latest_step FROM sessions "
        f"WHERE instr(id, '{NAMESPACE_SEPARATOR}') = 0 ORDER BY created_at, id"
    ).fetchall()
    return [
        SessionInfo(
            session_id=sid,
            created_at=codec.from_sqlite_time(created),
            updated_at=codec.from_sqlite_time(updated),
            latest_step=latest,
        )
        for sid, created, updated, latest in rows
    ]
