"""A batch of saves as a few statements, whatever its size: lock, insert steps (and events),
update sessions.

``PgStore.save_all`` locks every session row of a round at once (:data:`CREATE_SESSIONS` makes
the missing ones, :data:`LOCK_SESSIONS` locks them all in session id order), plans each save in Python (its fence first, ``checkpoint/_save_plan``;
appending to :class:`StepRows`, :class:`EventRows` and :class:`SessionRows`), then writes all step
rows with one ``INSERT ... SELECT``, all event rows with another, and moves all session rows with
one ``UPDATE ... FROM``: each statement's rows are one JSON parameter, an array of arrays read by
position (:func:`recordset`). In pipeline mode that is two round trips per batch. JSON columns travel as
text and are cast to JSONB by the server, BYTEA ones as base64.

Steps and events are inserted, never upserted: a row already stored fails the transaction with a
unique violation (:func:`duplicate_row` names it), and the group commit retries each save of the
batch alone. A step row a save rewrites (a re-save of the latest step, or an unfenced save) is
deleted first (:data:`DELETE_STEPS`), under the session row's lock.
"""

from __future__ import annotations

import re
from binascii import b2a_base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from ...errors import CheckpointConflict
from .._save_plan import EventRow, duplicate_seq, duplicate_step
from ._claim import RELEASE_SET, RELEASED
from ._rows import PgAppend
from ._sql import IDS, ids, recordset

__all__ = [
    "CREATE_SESSIONS",
    "DELETE_STEPS",
    "INSERT_EVENTS",
    "CANCEL_REQUESTED",
    "DONE_REQUESTS",
    "INSERT_STEPS",
    "LOCK_SESSIONS",
    "TOKEN",
    "UPDATE_RELEASING",
    "UPDATE_SESSIONS",
    "EventRows",
    "SessionRows",
    "StepKeys",
    "StepRows",
    "b64",
    "duplicate_row",
    "GUARD",
    "INSERT_LOG",
    "GuardRows",
    "LOCKED",
    "LogRows",
    "RELEASES",
    "ReleaseRows",
    "Statement",
    "Writes",
]


# Creates the session rows that are missing (a new row is locked by its insert), then locks them
# all in session id order: a lock, not a new row version (an upsert would rewrite the whole row).
# The locked rows also say whether a claim on them is alive, and whose (a write without it is
# refused), and for the claimed saves' fence, the claim token and whether a cancel was requested.
CREATE_SESSIONS = (
    "INSERT INTO {schema}.sessions (id, created_at, updated_at, latest_step, head, extra) "
    "SELECT id, %s, %s, -1, '', '' FROM json_array_elements_text(%s::json) AS t (id) "
    "ORDER BY id ON CONFLICT (id) DO NOTHING"
)
LOCK_SESSIONS = (
    "SELECT id, latest_step, msg_next, err_next, created_at, "
    "claim_token IS NOT NULL AND lease_until >= now(), worker, "
    "extract(epoch FROM lease_until - now())::float8, claim_token, cancel_requested "
    f"FROM {{schema}}.sessions WHERE id = ANY({IDS}) ORDER BY id FOR UPDATE"
)
TOKEN, CANCEL_REQUESTED = 7, 8
"""Where the claim token and the cancel request are in a :data:`LOCK_SESSIONS` row after its
id."""

# Rows travel as one JSON parameter per statement (orjson writes it in C; SQL arrays of many
# columns cost psycopg a Python call per element), BYTEA values in base64.
_STEP_COLUMNS = (
    "session_id text, step integer, created_at timestamptz, ran_nodes text, "
    "skipped_nodes text, updated_channels text, frontier text, versions text, cursor text, "
    "msg_start integer, msg_count integer, err_start integer, err_count integer, "
    "extra_ref bigint, extra_data text, epoch bigint"
)
_STEP_NAMES = tuple(column.split()[0] for column in _STEP_COLUMNS.split(", "))
_JSON_COLUMNS = {"ran_nodes", "skipped_nodes", "updated_channels", "frontier", "versions"}
_BYTEA_COLUMNS = {"cursor", "extra_data"}


def _step_value(column: str) -> str:
    if column in _JSON_COLUMNS:
        return f"{column}::jsonb"
    if column in _BYTEA_COLUMNS:
        return f"decode({column}, 'base64')"
    return column


INSERT_STEPS = (
    f"INSERT INTO {{schema}}.steps ({', '.join(_STEP_NAMES)}) SELECT "
    + ", ".join(map(_step_value, _STEP_NAMES))
    + f" FROM {recordset(_STEP_COLUMNS, 't')}"
)
DELETE_STEPS = (
    f"DELETE FROM {{schema}}.steps AS s USING {recordset('id text, step integer', 'd')} "
    f"WHERE s.session_id = d.id AND s.step = d.step AND s.session_id = ANY({IDS})"
)
INSERT_EVENTS = (
    "INSERT INTO {schema}.events (session_id, seq, step, data) "
    "SELECT s, q, t, decode(d, 'base64') "
    f"FROM {recordset('s text, q bigint, t integer, d text', 'e')}"
)

# A claimed save's session's attempts start over (it made progress), and its lease moves forward
# on the database's clock when a third of it ran down (``lease`` seconds; NULL: not claimed, or
# not yet: a row whose indexed lease column is left alone is updated in place, a HOT update).
_SESSION_SET = {
    "msg_next": "u.msg_next",
    "err_next": "u.err_next",
    "updated_at": "%s",
    "latest_step": "CASE WHEN u.moves THEN u.step ELSE s.latest_step END",
    "head": "COALESCE(decode(u.head, 'base64'), s.head)",
    "extra": "COALESCE(decode(u.extra, 'base64'), s.extra)",
    "lease_until": "COALESCE(now() + make_interval(secs => u.lease), s.lease_until)",
    "attempts": "CASE WHEN u.claimed THEN 0 ELSE s.attempts END",
}
_SESSION_COLUMNS = (
    "id text, msg_next integer, err_next integer, moves boolean, step integer, head text, "
    "extra text, claimed boolean, lease float8"
)


def _update_sessions(assignments: dict[str, str], columns: str) -> str:
    sets = ", ".join(f"{column} = {value}" for column, value in assignments.items())
    return (
        f"UPDATE {{schema}}.sessions AS s SET {sets} FROM {recordset(columns, 'u')} "
        f"WHERE s.id = u.id AND s.id = ANY({IDS})"
    )


def _releasing(column: str, released: str) -> str:
    """``column``'s value in a session update where some rows give their claim back too."""
    kept = _SESSION_SET.get(column, f"s.{column}")
    return f"CASE WHEN u.status IS NULL THEN {kept} ELSE {released} END"


UPDATE_SESSIONS = _update_sessions(_SESSION_SET, _SESSION_COLUMNS)
UPDATE_RELEASING = _update_sessions(
    {**_SESSION_SET, **{c: _releasing(c, v) for c, v in RELEASED.items()}},
    f"{_SESSION_COLUMNS}, status text, error text",
)
""":data:`UPDATE_SESSIONS` where the saves of some rows give their claim back in the same commit
(a run's last step, with its closing events: ``status`` is how it ended; a row is updated once
per statement, so the release is part of the update). Parameters: the update time, the inbox
requests the statement marks done, then the rows."""
RELEASES = (
    f"UPDATE {{schema}}.sessions AS s SET {RELEASE_SET} "
    f"FROM {recordset('id text, token text, status text, error text', 'u')} "
    f"WHERE s.id = u.id AND s.id = ANY({IDS}) AND s.claim_token = u.token"
)
"""Gives claims back with a run's last events (:class:`ReleaseRows`; a claim that is no longer
its session's gives nothing back)."""
DONE_REQUESTS = "UPDATE {schema}.inbox SET done_at = now() WHERE id = ANY(%s)"
"""Marks the inbox requests that claimed saves applied done."""
INSERT_LOG = (
    "INSERT INTO {schema}.channel_log (session_id, channel, idx, item) "
    "SELECT s, c, i, decode(d, 'base64') "
    f"FROM {recordset('s text, c text, i integer, d text', 'l')}"
)
"""Appends messages and errors to the sessions' channel logs."""


_GUARD_COLUMNS = (
    "id text, latest integer, msg integer, err integer, created timestamptz, token text, ref bigint"
)


def _guard(rows: str) -> str:
    """True when every session row a planned batch names is still as the plan assumed: its
    latest step, log counters and incarnation, its claim (``token``; NULL: no claim may be alive)
    and the ``extra_log`` row its extra builds on (``ref``). ``rows``: the session rows, already
    locked, so the answer holds until the commit."""
    return (
        f"SELECT count(*) = %s AS ok FROM {rows} AS s JOIN {recordset(_GUARD_COLUMNS, 'e')} "
        "ON s.id = e.id WHERE s.latest_step = e.latest "
        "AND s.msg_next = e.msg AND s.err_next = e.err AND s.created_at = e.created AND CASE "
        "WHEN e.token IS NULL THEN NOT coalesce(s.claim_token IS NOT NULL AND s.lease_until >= "
        "now(), false) ELSE s.claim_token = e.token END AND (e.ref IS NULL OR EXISTS (SELECT 1 "
        "FROM {schema}.extra_log AS x WHERE x.id = e.ref AND x.session_id = e.id))"
    )


GUARD = _guard("{schema}.sessions") + f" AND s.id = ANY({IDS})"
"""The guard over rows locked by an earlier statement (:data:`LOCK_SESSIONS`)."""
LOCKED = (
    "SELECT id, latest_step, msg_next, err_next, created_at, claim_token, lease_until, "
    f"cancel_requested FROM {{schema}}.sessions WHERE id = ANY({IDS}) ORDER BY id FOR UPDATE"
)
"""The batch's session rows, locked by the statement that writes them (``locked``: in session
id order, as every batch locks them). Rows another transaction changed meanwhile are read as it
left them (a row lock waits for that transaction, then reads the row's newest version), so the
guard over them is as good as one read after the lock."""


class Writes:
    """Everything one round writes once its saves are decided."""

    __slots__ = ("done", "events", "logs", "releases", "rewrites", "sessions", "steps")

    def __init__(self) -> None:
        self.steps = StepRows()
        self.sessions = SessionRows()
        """A row for each of :attr:`steps`."""
        self.events = EventRows()
        self.logs = LogRows()
        self.rewrites = StepKeys()
        """Step rows rewritten under the fence: deleted first (:data:`DELETE_STEPS`)."""
        self.releases = ReleaseRows()
        """Claims given back with their runs' last events."""
        self.done: list[int] = []
        """Inbox requests the claimed saves (and the claims given back) applied."""

    def append(self, item: PgAppend, rows: Sequence[EventRow]) -> None:
        """A run's events appended as ``rows``; the last ones of an in-process run give its
        claim back too (``item.release``) and mark its applied requests done."""
        self.events.add(item.key, rows)
        if item.release is not None:
            self.releases.add(item.key, item.claim.token, item.release.value)
            self.done.extend(item.consume)

    def statement(
        self, now: datetime, guard: GuardRows | None = None, *, lock: bool = False
    ) -> Statement | None:
        """The writes as one statement (the others as its data-modifying ``WITH`` parts) and
        its parameters; None when there is nothing to write. With ``guard``, each part writes
        only if the guard holds, and the statement answers whether it did (``ok``). With
        ``lock`` too, the statement locks the guarded rows itself (:data:`LOCKED`) and also
        answers which of them have a cancel requested: the whole batch in one statement, which
        is its own transaction."""
        parts: list[tuple[str, bool]] = []  # (SQL, whether it has a WHERE clause already)
        params: list[Any] = []
        if self.steps:
            sessions = self.sessions
            if sessions.releasing:
                parts += ((INSERT_STEPS, False), (UPDATE_RELEASING, True))
                params += (*self.steps.params(), now, self.done, *sessions.params())
            else:
                parts += ((INSERT_STEPS, False), (UPDATE_SESSIONS, True))
                params += (*self.steps.params(), now, *sessions.params())
        for rows, sql in ((self.events, INSERT_EVENTS), (self.logs, INSERT_LOG)):
            if rows:
                parts.append((sql, False))
                params += rows.params()
        if self.releases:
            parts.append((RELEASES, True))
            params += (self.done, *self.releases.params())
        if self.done:
            parts.append((DONE_REQUESTS, True))
            params.append(self.done)
        if guard is None:
            if not parts:
                return None
            *first, (last, _) = parts
            return _with([sql for sql, _ in first], last), tuple(params)
        only_if = "(SELECT ok FROM g)"
        guarded = [f"{sql} {'AND' if where else 'WHERE'} {only_if}" for sql, where in parts]
        if lock:
            count, rows, keys = guard.params()
            answer = (
                "SELECT (SELECT ok FROM g), ARRAY(SELECT id FROM locked WHERE cancel_requested)"
            )
            return _with([LOCKED, _guard("locked"), *guarded], answer, names=["locked", "g"]), (
                keys, count, rows, *params,
            )  # fmt: skip
        return _with([GUARD, *guarded], "SELECT ok FROM g", names=["g"]), (
            *guard.params(), *params,
        )  # fmt: skip


Statement = tuple[str, tuple[Any, ...]]


def _with(parts: Sequence[str], last: str, names: Sequence[str] = ()) -> str:
    if not parts:
        return last
    named = [*names, *(f"w{i}" for i in range(len(parts) - len(names)))]
    return f"WITH {', '.join(f'{n} AS ({p})' for n, p in zip(named, parts, strict=True))} {last}"


def b64(data: bytes | None) -> str | None:
    """A BYTEA value as the base64 text the statements decode."""
    return None if data is None else b2a_base64(data, newline=False).decode("ascii")


class _Rows:
    """Rows of one statement, sent as one JSON array of arrays (:func:`recordset`)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def __bool__(self) -> bool:
        return bool(self.rows)

    def params(self) -> tuple[str, ...]:
        return (orjson.dumps(self.rows).decode(),)


class _KeyedRows(_Rows):
    """Rows of sessions named by their id (each row's first value): sent with those ids
    (:data:`IDS`)."""

    __slots__ = ()

    def params(self) -> tuple[str, ...]:
        rows = self.rows
        return (orjson.dumps(rows).decode(), ids(row[0] for row in rows))


class StepRows(_Rows):
    """The step rows of one round, as :data:`INSERT_STEPS` takes them."""

    __slots__ = ()

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
        self.rows.append([
            sid, step, created_at, *json_texts, b64(cursor), *windows, extra[0], b64(extra[1]),
            epoch,
        ])  # fmt: skip


class EventRows(_Rows):
    """The event rows of one round (or of one ``append_events``), as :data:`INSERT_EVENTS`
    takes them."""

    __slots__ = ()

    def add(self, sid: str, rows: Sequence[EventRow]) -> None:
        if rows:
            self.rows.extend([sid, seq, step, b64(data)] for seq, step, data in rows)


class LogRows(_Rows):
    """Channel log items of one round, as :data:`INSERT_LOG` takes them."""

    __slots__ = ()

    def add(self, sid: str, channel: str, start: int, items: Sequence[bytes]) -> None:
        if not items:
            return
        self.rows.extend(
            [sid, channel, start + offset, b64(item)] for offset, item in enumerate(items)
        )


class GuardRows(_KeyedRows):
    """What a planned batch assumes of each session row, as :data:`GUARD` takes it."""

    __slots__ = ()

    def add(
        self, sid: str, row: tuple[int, int, int, datetime, str], token: str | None,
        ref: int | None,
    ) -> None:  # fmt: skip
        latest, msg, err, created, _ = row
        self.rows.append([sid, latest, msg, err, created, token, ref])

    def params(self) -> tuple[int | str, ...]:  # type: ignore[override]
        return (len(self.rows), *super().params())


class StepKeys(_KeyedRows):
    """``(session, step)`` pairs of one round, as :data:`DELETE_STEPS` takes them."""

    __slots__ = ()

    def add(self, sid: str, step: int) -> None:
        self.rows.append([sid, step])


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


class ReleaseRows(_KeyedRows):
    """Claims given back, as :data:`RELEASES` takes them."""

    __slots__ = ()

    def add(self, sid: str, token: str, status: str) -> None:
        self.rows.append([sid, token, status, None])


class SessionRows(_KeyedRows):
    """The session rows of one round, as :data:`UPDATE_SESSIONS` takes them (or
    :data:`UPDATE_RELEASING`, when some give their claim back)."""

    __slots__ = ("releasing",)

    def __init__(self) -> None:
        super().__init__()
        self.releasing = False

    def add(
        self,
        sid: str,
        counters: tuple[int, int],
        moves_to: int | None,
        head: bytes | None,
        extra: bytes | None,
        claimed: bool = False,
        lease: float | None = None,
        release: str | None = None,
    ) -> None:
        """The new log counters; when ``moves_to`` is a step, the head moves there (``extra``:
        the new whole extra, None when unchanged); ``claimed``: a claimed save; ``lease``: the
        claim's lease (seconds) to extend from now (None: left as it is); ``release``: the
        claim is given back too, the run having ended so (a run status)."""
        row = [
            sid, counters[0], counters[1], moves_to is not None, moves_to or 0, b64(head),
            b64(extra), claimed, lease,
        ]  # fmt: skip
        if release is not None:
            row.append(release)  # (``status``; rows without it read NULL there)
            self.releasing = True
        self.rows.append(row)
