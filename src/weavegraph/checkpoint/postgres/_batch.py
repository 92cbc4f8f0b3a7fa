"""A batch of saves as a few statements, whatever its size: lock, insert steps (and events),
update sessions.

``PgStore.save_all`` locks every session row of a round at once (:data:`LOCK_SESSIONS`, in
session id order), plans each save in Python (its fence first, ``checkpoint/_save_plan``;
appending to :class:`StepRows`, :class:`EventRows` and :class:`SessionRows`), then writes all step
rows with one ``INSERT ... SELECT FROM unnest(...)``, all event rows with another, and moves all
session rows with one ``UPDATE ... FROM unnest(...)``. In pipeline mode that is two round trips
per batch. JSON columns travel as text and are cast to JSONB by the server.

Steps and events are inserted, never upserted: a row already stored fails the transaction with a
unique violation (:func:`duplicate_row` names it), and the group commit retries each save of the
batch alone. A step row a save rewrites (a re-save of the latest step, or an unfenced save) is
deleted first (:data:`DELETE_STEPS`), under the session row's lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...errors import CheckpointConflict
from .._save_plan import EventRow, duplicate_seq, duplicate_step

__all__ = [
    "DELETE_STEPS",
    "INSERT_EVENTS",
    "CANCEL_REQUESTED",
    "DONE_REQUESTS",
    "INSERT_STEPS",
    "LOCK_SESSIONS",
    "TOKEN",
    "UPDATE_SESSIONS",
    "EventRows",
    "SessionRows",
    "StepKeys",
    "StepRows",
    "duplicate_row",
]

# Creates each session row if needed and locks it (ON CONFLICT DO UPDATE locks like FOR UPDATE);
# also says whether a claim on it is alive, and whose (a write without the claim is refused), and
# for the claimed saves' fence, its claim token and whether a cancel was requested.
LOCK_SESSIONS = (
    "INSERT INTO {schema}.sessions (id, created_at, updated_at, latest_step, head, extra) "
    "SELECT id, %s, %s, -1, '', '' FROM unnest(%s::text[]) AS t (id) ORDER BY id "
    "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at "
    "RETURNING id, latest_step, msg_next, err_next, created_at, "
    "claim_token IS NOT NULL AND lease_until >= now(), worker, "
    "extract(epoch FROM lease_until - now())::float8, claim_token, cancel_requested"
)
TOKEN, CANCEL_REQUESTED = 7, 8
"""Where the claim token and the cancel request are in a :data:`LOCK_SESSIONS` row after its
id."""

_STEP_COLUMNS = (
    "session_id, step, created_at, ran_nodes, skipped_nodes, updated_channels, frontier, "
    "versions, cursor, msg_start, msg_count, err_start, err_count, extra_ref, extra_data, epoch"
)
_STEP_TYPES = (
    "text", "integer", "timestamptz", "text", "text", "text", "text", "text", "bytea",
    "integer", "integer", "integer", "integer", "bigint", "bytea", "bigint",
)  # fmt: skip
_JSON_COLUMNS = {"ran_nodes", "skipped_nodes", "updated_channels", "frontier", "versions"}
_names = _STEP_COLUMNS.split(", ")
INSERT_STEPS = (
    f"INSERT INTO {{schema}}.steps ({_STEP_COLUMNS}) SELECT "
    + ", ".join(f"{c}::jsonb" if c in _JSON_COLUMNS else c for c in _names)
    + " FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _STEP_TYPES)
    + f") AS t ({_STEP_COLUMNS})"
)
DELETE_STEPS = (
    "DELETE FROM {schema}.steps AS s USING unnest(%s::text[], %s::integer[]) AS d (id, step) "
    "WHERE s.session_id = d.id AND s.step = d.step"
)
INSERT_EVENTS = (
    "INSERT INTO {schema}.events (session_id, seq, step, data) SELECT * FROM "
    "unnest(%s::text[], %s::bigint[], %s::integer[], %s::bytea[])"
)

# A claimed save's lease moves forward on the database's clock (``lease`` seconds; NULL: not
# claimed) and its session's attempts start over (it made progress).
UPDATE_SESSIONS = (
    "UPDATE {schema}.sessions AS s SET msg_next = u.msg_next, err_next = u.err_next, "
    "latest_step = CASE WHEN u.moves THEN u.step ELSE s.latest_step END, "
    "head = COALESCE(u.head, s.head), extra = COALESCE(u.extra, s.extra), "
    "lease_until = COALESCE(now() + make_interval(secs => u.lease), s.lease_until), "
    "attempts = CASE WHEN u.lease IS NULL THEN s.attempts ELSE 0 END "
    "FROM unnest(%s::text[], %s::integer[], %s::integer[], %s::boolean[], %s::integer[], "
    "%s::bytea[], %s::bytea[], %s::float8[]) "
    "AS u (id, msg_next, err_next, moves, step, head, extra, lease) WHERE s.id = u.id"
)
DONE_REQUESTS = "UPDATE {schema}.inbox SET done_at = now() WHERE id = ANY(%s)"
"""Marks the inbox requests that claimed saves applied done."""


class StepRows:
    """The step rows of one round, as the column arrays :data:`INSERT_STEPS` takes."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: tuple[list[Any], ...] = tuple([] for _ in _names)

    def add(
        self,
        sid: str,
        step: int,
        created_at: datetime,
        json_texts: tuple[str, str, str, str, str],
        cursor: bytes,
        windows: tuple[int, int, int, int],
        extra: tuple[int | None, bytes | None],
        epoch: int | None,
    ) -> None:
        """One row: ``json_texts`` are ran, skipped, updated, frontier and versions as JSON text;
        ``windows`` the message and error ``(start, count)`` pairs; ``extra`` its two columns;
        ``epoch`` the claim's that commits it (None: unclaimed)."""
        for column, value in zip(
            self.columns,
            (sid, step, created_at, *json_texts, cursor, *windows, *extra, epoch),
            strict=True,
        ):
            column.append(value)

    def __bool__(self) -> bool:
        return bool(self.columns[0])

    def params(self) -> tuple[list[Any], ...]:
        return self.columns


class EventRows:
    """The event rows of one round (or of one ``append_events``), as :data:`INSERT_EVENTS` takes."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: tuple[list[Any], ...] = ([], [], [], [])

    def add(self, sid: str, rows: Sequence[EventRow]) -> None:
        for seq, step, data in rows:
            for column, value in zip(self.columns, (sid, seq, step, data), strict=True):
                column.append(value)

    def __bool__(self) -> bool:
        return bool(self.columns[0])

    def params(self) -> tuple[list[Any], ...]:
        return self.columns


class StepKeys:
    """``(session, step)`` pairs of one round, as :data:`DELETE_STEPS` takes."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: tuple[list[str], list[int]] = ([], [])

    def add(self, sid: str, step: int) -> None:
        self.columns[0].append(sid)
        self.columns[1].append(step)

    def __bool__(self) -> bool:
        return bool(self.columns[0])

    def params(self) -> tuple[list[str], list[int]]:
        return self.columns


def duplicate_row(session_id: str, error: BaseException | None) -> CheckpointConflict | None:
    """The conflict for a unique violation on a step or event row (None for any other error):
    such a row is never replaced. The key comes from the server's detail
    (``Key (session_id, seq)=(s, 2) already exists.``)."""
    diag = getattr(error, "diag", None)
    if getattr(error, "sqlstate", None) != "23505" or diag is None:
        return None
    table = getattr(diag, "table_name", None)
    found = _KEY.search(getattr(diag, "message_detail", None) or "")
    if table not in ("steps", "events") or found is None:
        return None
    number = int(found.group(1))
    if table == "steps":
        return duplicate_step(session_id, number)
    return duplicate_seq(session_id, number)


_KEY = re.compile(r"=\(.*, (\d+)\) already exists")


class SessionRows:
    """The session rows of one round, as the arrays :data:`UPDATE_SESSIONS` takes."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: tuple[list[Any], ...] = tuple([] for _ in range(8))

    def add(
        self,
        sid: str,
        counters: tuple[int, int],
        moves_to: int | None,
        head: bytes | None,
        extra: bytes | None,
        lease: float | None = None,
    ) -> None:
        """The new log counters; when ``moves_to`` is a step, the head moves there (``extra``:
        the new whole extra, None when unchanged); ``lease``: a claimed save's lease (seconds),
        extended from now."""
        row = (sid, *counters, moves_to is not None, moves_to or 0, head, extra, lease)
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)

    def params(self) -> tuple[list[Any], ...]:
        return self.columns
