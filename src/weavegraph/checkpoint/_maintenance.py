"""What storage management reports, the same for every SQL backend (``weavegraph db ...``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageStats:
    """What a database holds and how much disk it takes.

    ``bytes``: SQLite, the file plus its WAL; PostgreSQL, ``pg_total_relation_size`` of the
    weavegraph tables (indexes and TOAST included).
    """

    location: str
    sessions: int
    steps: int
    events: int
    log_items: int
    bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """What ``prune`` removed."""

    steps_deleted: int
    sessions_affected: int
    log_items_deleted: int


def check_prune_args(older_than: timedelta | None, keep_last: int | None) -> None:
    """A ValueError unless ``prune`` was given something to do."""
    if older_than is None and keep_last is None:
        raise ValueError("prune needs older_than, keep_last or both")
    if keep_last is not None and keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")
