"""The storage seam: the records a checkpointer stores, its protocol, and the maintenance protocol.

Every backend (``memory``, ``sqlite``, ``postgres``) implements :class:`Checkpointer` and passes
``weavegraph.testing.conformance``; the SQL backends also implement :class:`Maintainable`, which is
what ``weavegraph db ...`` drives.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from ..errors import ConfigError, InvalidSessionId
from ..state import FrozenDict, VersionedState
from ..status import RunStatus

if TYPE_CHECKING:
    from ..session_status import PendingInterrupt


NAMESPACE_SEPARATOR = "/"
"""Joins the node ids of a subgraph's namespace (``research/search``). Never in a session id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The session after ``step`` (0 = the initial state, before any step).

    ``cursor`` is the runner's scheduling data (frontier details, versions seen, join progress,
    pending interrupts, event sequence): JSON the backend stores without interpreting.

    ``keep_tasks_of`` is an instruction to ``save``, not stored: the saved task results
    (:meth:`Checkpointer.save_task_results`) of the tasks planned after that step are kept (the
    step is still to run: it failed or paused); every other saved task result of the session is
    deleted in the same transaction. None: all of them are deleted.

    ``namespace`` is empty for the session's own graph; a subgraph's checkpoints carry its path
    of node ids (``research``, ``research/search``) and belong to the session: they are listed
    with none of ``list_sessions`` and deleted with the session.
    """

    session_id: str
    step: int
    state: VersionedState
    frontier: tuple[str, ...]
    ran_nodes: tuple[str, ...] = ()
    skipped_nodes: tuple[str, ...] = ()
    updated_channels: tuple[str, ...] = ()
    cursor: Mapping[str, Any] = field(default_factory=FrozenDict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    keep_tasks_of: int | None = None
    namespace: str = ""


def storage_key(session_id: str, namespace: str = "") -> str:
    """The key a backend stores checkpoints under: the session id, or for a subgraph's
    ``<session id>/<namespace>``. A session id with a ``/`` is an InvalidSessionId."""
    if NAMESPACE_SEPARATOR in session_id:
        raise InvalidSessionId(session_id)
    return f"{session_id}{NAMESPACE_SEPARATOR}{namespace}" if namespace else session_id


def is_subgraph_key(key: str) -> bool:
    """Whether a storage key is a subgraph's (not listed as a session)."""
    return NAMESPACE_SEPARATOR in key


def session_of(key: str) -> str:
    """The session a storage key belongs to (its events are stored under it)."""
    return key.partition(NAMESPACE_SEPARATOR)[0]


def subgraph_keys_prefix(session_id: str) -> str:
    """What the storage keys of every subgraph of ``session_id`` start with."""
    return session_id + NAMESPACE_SEPARATOR


def stored_form(checkpoint: Checkpoint) -> Checkpoint:
    """``checkpoint`` as a backend that keys by session id stores it (a subgraph's under its
    :func:`storage_key`)."""
    key = storage_key(checkpoint.session_id, checkpoint.namespace)
    return replace(checkpoint, session_id=key, namespace="") if checkpoint.namespace else checkpoint


def loaded_form(
    checkpoint: Checkpoint | None, session_id: str, namespace: str
) -> Checkpoint | None:
    """A checkpoint read under a :func:`storage_key`, with its session id and namespace back."""
    if checkpoint is None or not namespace:
        return checkpoint
    return replace(checkpoint, session_id=session_id, namespace=namespace)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepInfo:
    """One entry of a session's history (no state: cheap to list)."""

    step: int
    created_at: datetime
    ran_nodes: tuple[str, ...]
    skipped_nodes: tuple[str, ...]
    updated_channels: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """One session as ``list_sessions`` shows it.

    ``status`` (one of ``wg.RunStatus``) and ``interrupt`` (the pending question, a
    ``wg.PendingInterrupt``, or None) are filled in by ``AppRunner.list_sessions`` /
    ``session_info``, read from what is stored; a checkpointer's own listing leaves them None.
    """

    session_id: str
    created_at: datetime
    updated_at: datetime
    latest_step: int
    status: RunStatus | None = None
    interrupt: PendingInterrupt | None = None


@runtime_checkable
class Checkpointer(Protocol):
    """Async storage of checkpoints. Every backend passes ``weavegraph.testing.conformance``.

    Fenced saves: ``builds_on`` states what a save builds on: ``None`` no check, ``-1`` a session
    that does not exist yet, ``k`` a session whose latest stored step is exactly ``k``. When the
    stored session is anything else, nothing is written and ``wg.CheckpointConflict`` is raised.
    A save of step ``k`` building on ``k`` re-saves the latest step in place (decisions taken
    between steps); otherwise steps and events are inserted, never replaced: a step or event
    ``seq`` already stored is a conflict too.

    Without a fence, ``save`` never moves a session's latest pointer backwards (a save of an older
    step than the latest is stored in history, but ``load_latest`` keeps returning the newest).

    A subgraph's checkpoints (``Checkpoint.namespace``) are kept apart from the session's, each
    namespace with its own steps, latest pointer and fence: read them with ``namespace=``;
    ``list_sessions`` never lists them and ``delete_session`` removes them with the session.
    """

    async def save(
        self,
        checkpoint: Checkpoint,
        *,
        events: Sequence[Mapping[str, Any]] = (),
        builds_on: int | None = None,
    ) -> None:
        """Store ``checkpoint`` and the ``events`` its step emitted (JSON mappings, each with an
        int ``seq``) in one transaction, durably before returning; fenced by ``builds_on``."""
        ...

    async def load_latest(self, session_id: str, *, namespace: str = "") -> Checkpoint | None:
        """The session's newest step (or its subgraph's at ``namespace``), or None if unknown."""
        ...

    async def load(self, session_id: str, step: int, *, namespace: str = "") -> Checkpoint | None:
        """That step exactly as saved, or None if it is not (or no longer) stored."""
        ...

    async def list_sessions(self) -> list[SessionInfo]:
        """Every stored session with its latest step."""
        ...

    async def history(self, session_id: str, *, namespace: str = "") -> list[StepInfo]:
        """The stored steps of a session (or of its subgraph at ``namespace``) in step order;
        ``[]`` for an unknown one."""
        ...

    async def delete_session(self, session_id: str) -> bool:
        """Remove the session's steps, its subgraphs' and its events; False if there was no
        such session."""
        ...

    async def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        builds_on: int | None = None,
    ) -> None:
        """Store events emitted after the session's latest step (their JSON form, each with an
        int ``seq``), recorded with that step, in one transaction; fenced like ``save`` (a
        ``seq`` already stored is then a conflict; an unfenced append replaces it)."""
        ...

    async def load_events(
        self, session_id: str, after_seq: int = -1, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Stored events with ``seq > after_seq``, in seq order; at most ``limit`` of them."""
        ...

    async def close(self) -> None:
        """Release connections; the checkpointer cannot be used afterwards."""
        ...


@runtime_checkable
class TaskResultStore(Protocol):
    """Per-task durability: where a step's finished task results wait until the step commits.

    Every built-in backend has these two methods; the run loop uses them when the checkpointer
    has them (a custom ``Checkpointer`` without them still runs, without per-task durability: a
    step that fails or is killed re-runs all its tasks).
    """

    async def save_task_results(
        self,
        session_id: str,
        builds_on_step: int,
        results: Mapping[int, Any],
        *,
        namespace: str = "",
    ) -> None:
        """Store finished task results (JSON, by task index) of the step after ``builds_on_step``
        durably before returning; an index saved again is replaced. They live until a ``save``
        of the session (in that namespace) drops them (see ``Checkpoint.keep_tasks_of``) or the
        session is deleted.
        """
        ...

    async def load_task_results(
        self, session_id: str, builds_on_step: int, *, namespace: str = ""
    ) -> dict[int, Any]:
        """The saved task results of the step after ``builds_on_step``, by task index."""
        ...


_WANTED: Final = {
    "save": ("events", "builds_on"),
    "append_events": ("builds_on",),
    "load_events": (),
}
"""What the run loop calls beyond the first release's checkpointers: method -> its keywords."""
_FENCED_SAVES_DOCS: Final = (
    "see 'Fenced saves: one writer per step' in the operations guide "
    "(docs/OPERATIONS.md#fenced-saves)"
)


def check_checkpointer(checkpointer: object) -> None:
    """ConfigError naming what is missing when ``checkpointer`` was written for an older
    weavegraph (a ``save`` without the ``events``/``builds_on`` keywords, no event methods):
    refused when it is handed over, not in the middle of a run. Checked once per class (per
    object for one that delegates its methods, say through ``__getattr__``)."""
    cls = type(checkpointer)
    if all(hasattr(cls, name) for name in _WANTED):
        missing = _missing_in_class(cls)
    else:
        missing = _missing(checkpointer)
    if missing:
        raise ConfigError(
            f"{type(checkpointer).__name__} cannot store runs: {'; '.join(missing)}. "
            f"Checkpointers store each step's events with it and fence their saves "
            f"({_FENCED_SAVES_DOCS})"
        )


@functools.cache
def _missing_in_class(cls: type) -> tuple[str, ...]:
    return _missing(cls)


def _missing(owner: object) -> tuple[str, ...]:
    problems: list[str] = []
    for name, keywords in _WANTED.items():
        method = getattr(owner, name, None)
        if not callable(method):
            problems.append(f"it has no {name}() method")
            continue
        try:
            params = inspect.signature(method).parameters
        except (TypeError, ValueError):  # a builtin or an odd callable: trust it
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        absent = [k for k in keywords if k not in params]
        if absent:
            names = " and ".join(repr(k) for k in absent)
            problems.append(f"its {name}() has no {names} keyword parameter")
    return tuple(problems)


class RunClaim(Protocol):
    """A run's hold on its session (what :meth:`SessionClaims.hold` yields)."""

    ended: RunStatus | None
    """How the run ended: the session is given back with this status."""
    closing: bool
    """Set while the run's last events are stored: the store may give the session back
    (``ended``) in the same commit."""

    def takeover(self) -> str | None:
        """Once, when the claim took over an expired one (its holder died mid-run): who held
        it; else None."""
        ...


@runtime_checkable
class SessionClaims(Protocol):
    """A checkpointer shared by processes that claim each session they run (PostgreSQL).

    The run loop holds the claim for the length of every run, so two processes never drive one
    session at once: the second gets ``SessionBusy`` naming the holder, and a claim whose
    holder died is taken over once its lease expires. Memory and SQLite have no claims (SQLite's
    saves are fenced by the step they build on).
    """

    def hold(self, session_id: str) -> AbstractAsyncContextManager[RunClaim]:
        """Claim ``session_id`` while inside; ``SessionBusy`` while another claim is alive."""
        ...


def check_events_query(after_seq: int, limit: int | None) -> None:
    """A ValueError unless ``load_events`` was given an int ``after_seq`` and a limit >= 0."""
    if isinstance(after_seq, bool) or not isinstance(after_seq, int):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"after_seq must be an int, got {after_seq!r}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < 0  # pyright: ignore[reportUnnecessaryIsInstance]
    ):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")


# --- storage management ----------------------------------------------------------------------


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
    """What ``prune`` removed (with ``dry_run``: what it would remove; nothing was)."""

    steps_deleted: int
    sessions_affected: int
    log_items_deleted: int
    dry_run: bool = False


class PruneRolledBack(Exception):
    """Raised at the end of a dry-run prune's transaction so the backend rolls it back; the
    backend returns ``result``."""

    def __init__(self, result: PruneResult) -> None:
        super().__init__("dry run")
        self.result = result


def finish_prune(result: PruneResult, dry_run: bool) -> PruneResult:
    """What a prune's transaction ends with: ``result``, or (``dry_run``) a rollback carrying it."""
    if dry_run:
        raise PruneRolledBack(dataclasses.replace(result, dry_run=True))
    return result


def check_prune_args(older_than: timedelta | None, keep_last: int | None) -> None:
    """A ValueError unless ``prune`` was given something to do."""
    if older_than is None and keep_last is None:
        raise ValueError("prune needs older_than, keep_last or both")
    if keep_last is not None and keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationResult:
    """What a migration did: the schema version before and after, and where."""

    location: str
    before: int
    after: int

    @property
    def applied(self) -> int:
        return self.after - self.before


@runtime_checkable
class Maintainable(Protocol):
    """Storage management a checkpointer may offer (the SQL backends do): ``weavegraph db``.

    ``location`` names the database without secrets; ``schema_before`` is the schema version the
    database had when this checkpointer connected (before it migrated it).
    """

    @property
    def location(self) -> str:
        """Where the data lives (a path, or host:port/database and schema), never a password."""
        ...

    @property
    def schema_before(self) -> int:
        """The schema version found when this checkpointer connected (before migrating)."""
        ...

    async def stats(self) -> StorageStats:
        """Counts of sessions, steps, events and log items, and bytes on disk."""
        ...

    async def prune(
        self,
        *,
        older_than: timedelta | None = None,
        keep_last: int | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete old steps, never a session's latest one (``dry_run``: count them, delete
        nothing)."""
        ...

    async def vacuum(self) -> tuple[int, int]:
        """Return free space to the system; bytes before and after."""
        ...

    async def schema_version(self) -> int:
        """The database's schema version now."""
        ...
