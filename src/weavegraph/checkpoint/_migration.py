"""Schema versions of the SQL backends: what a migration is, and the layout both backends share.

Each backend has its list of ``Migration(version, statements)`` beside it (``sqlite/_schema``,
``postgres/_schema``); a database records the versions it
has in the ``weavegraph_schema`` table. Connecting applies what is missing (SQLite: in one
``BEGIN IMMEDIATE`` transaction; PostgreSQL: in one transaction under ``pg_advisory_xact_lock``, so
processes starting together are safe). A database whose version is newer than the last migration
here is refused (``DatabaseSchemaTooNew``) and left untouched, as is a file that is not a weavegraph
database (``NotAWeavegraphDatabase``).

Layout (both backends; PostgreSQL uses TIMESTAMPTZ, JSONB for name lists and BYTEA for payloads):

- ``sessions``: one row per session: ``id``, ``created_at``, ``updated_at``, ``latest_step``, the
  latest checkpoint's small fields (``head``), the session's log lengths. A small latest
  ``extra`` is in the head; a large one is in ``session_extra`` (rewritten whole when it
  changes), except on SQLite from version 4, where the head references it as a step row does.
- ``steps``: one row per committed step, primary key ``(session_id, step)``: ``created_at``, what
  ran / was skipped / was updated, frontier, versions, cursor, the step's windows into the channel
  log, and its ``extra``. Version 2 (both backends): whole, or a delta over a row of
  ``extra_log`` (``extra_ref``), never over another step, so deleting any steps by hand leaves
  the others loadable.
- ``extra_log``: the session's ``extra`` snapshots and deltas over them, append-only; rows no
  step reaches are collected by prune and vacuum.
- ``channel_log``: the session's messages and errors, append-only, keyed by
  ``(session_id, channel, idx)``. Rows belong to the session, not to a step.
- ``events``: the session's stored events by ``seq``.
- ``task_results`` (SQLite version 5, PostgreSQL 4): finished task results of a step not yet
  committed, keyed by ``(session_id, builds_on, idx)``; a step's save deletes them in its
  transaction.
- SQLite: a trigger on ``DELETE FROM sessions`` removes the session's rows everywhere, so the
  guide's ``DELETE FROM sessions WHERE id = ?`` works even with foreign keys off (sqlite3 shell).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEMA_TABLE", "SQLITE_APPLICATION_ID", "Migration", "latest_version"]

SCHEMA_TABLE = "weavegraph_schema"
# SQLite: the file header's ``application_id`` of a weavegraph database (set by SQLite migration 6),
# found even when the schema pages are lost (a truncated file).
SQLITE_APPLICATION_ID = int.from_bytes(b"WvGr", "big")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: the statements that bring the previous version to ``version``.

    ``convert``, when set, runs after ``statements`` to move the data (SQLite: ``convert(conn)``;
    PostgreSQL: ``await convert(conn, schema)``), then the ``then`` statements run; all in the
    migration's one transaction.
    """

    version: int
    statements: tuple[str, ...]
    convert: Callable[..., Any] | None = None
    then: tuple[str, ...] = ()


def latest_version(migrations: tuple[Migration, ...]) -> int:
    """The schema version the code writes."""
    return migrations[-1].version if migrations else 0
