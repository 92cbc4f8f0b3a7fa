"""Sans-I/O superstep planning: version gating, the barrier merge, and the next frontier.

Everything here is a pure function of its inputs (no asyncio, no clocks, no storage), so the
decisions that make runs deterministic can be tested without an event loop. The executor
(``runner.py``) runs what :func:`plan_step` says, calls the routers :func:`routers_to_call` names, and
feeds the results back to :func:`merge_barrier` and :func:`advance`.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, cast

from ._node_result import check_messages, freeze_partial
from ._reducing import merge_extra, merge_sequence
from .errors import ReducerError, RoutingError, StateError
from .graph.spec import GraphSpec, RouterSpec
from .partial import NodePartial
from .reducers import add_errors, add_messages
from .state import ChannelType, ErrorEvent, VersionedState, make_versions
from .state._frozen import (
    EMPTY_DICT,
    FrozenDict,
    FrozenList,
    freeze_mapping,
)
from .state._versioned import trusted_state
from .types import END, START

__all__ = [
    "Barrier",
    "Cursor",
    "StepPlan",
    "advance",
    "freeze_partial",
    "initial_cursor",
    "merge_barrier",
    "next_frontier",
    "normalize_route",
    "plan_step",
    "record_failure",
    "routers_to_call",
]

logger = logging.getLogger(__name__)
"""The scheduler's decisions at DEBUG: per step what ran, what was skipped, the next frontier.
Callers check ``logger.isEnabledFor(logging.DEBUG)`` once per run, not per step."""


def log_step(session_id: str, plan: StepPlan, frontier: Sequence[str]) -> None:
    """One DEBUG line for a merged step (call only when DEBUG is enabled for ``logger``)."""
    logger.debug(
        "session %s step %d: ran %s, skipped %s, next frontier %s",
        session_id,
        plan.step,
        list(plan.run),
        list(plan.skipped),
        list(frontier),
    )


_CHANNELS = ("messages", "extra", "errors")
_SEEN = operator.itemgetter(*_CHANNELS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """Where a session stands between supersteps; stored as JSON in ``Checkpoint.cursor``.

    ``step`` is the last recorded superstep (0 before any), ``frontier`` what runs next,
    ``versions_seen`` the channel versions each node last ran on (version gating), ``join_progress``
    the join sources completed since each join's target last ran, ``next_seq`` the next event
    sequence number, ``interrupt`` a pending dynamic interrupt (``{"node", "value"}``), ``resume``
    the values resumed nodes receive from ``ctx.interrupt``, and ``paused_before`` the step before
    which an ``interrupt_before`` pause was already taken (so asking again runs that step).
    A frontier of just ``START`` means the start itself failed (its routing) and is retried.
    """

    step: int = 0
    frontier: tuple[str, ...] = ()
    versions_seen: Mapping[str, Mapping[str, int]] = EMPTY_DICT
    join_progress: Mapping[str, tuple[str, ...]] = EMPTY_DICT
    next_seq: int = 0
    interrupt: Mapping[str, Any] | None = None
    resume: Mapping[str, Any] = EMPTY_DICT
    paused_before: int | None = None
    # ``versions_seen`` in its JSON form, computed once and then carried from cursor to cursor by
    # advance() (only the nodes that ran change), so a checkpoint does not re-encode the table.
    _json_seen: dict[str, FrozenList] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def to_json_value(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "frontier": list(self.frontier),
            "versions_seen": dict(self.json_seen()),
            "join_progress": {key: list(done) for key, done in self.join_progress.items()},
            "next_seq": self.next_seq,
            "interrupt": dict(self.interrupt) if self.interrupt is not None else None,
            "resume": dict(self.resume),
            "paused_before": self.paused_before,
        }

    def json_seen(self) -> dict[str, FrozenList]:
        """``versions_seen`` as JSON: ``[messages, extra, errors]`` per node (do not mutate)."""
        cached = self._json_seen
        if cached is None:
            cached = dict(
                zip(
                    self.versions_seen.keys(),
                    map(FrozenList, map(_SEEN, self.versions_seen.values())),
                    strict=True,
                )
            )
            object.__setattr__(self, "_json_seen", cached)
        return cached

    @classmethod
    def from_json_value(cls, value: Mapping[str, Any]) -> Cursor:
        """Rebuild a cursor from :meth:`to_json_value` output; a StateError says what is wrong."""
        try:
            seen: Mapping[str, Sequence[int]] = value.get("versions_seen") or {}
            joins: Mapping[str, Sequence[str]] = value.get("join_progress") or {}
            interrupt: Mapping[str, Any] | None = value.get("interrupt")
            paused_before: Any = value.get("paused_before")
            return cls(
                step=int(value.get("step", 0)),
                frontier=tuple(str(node) for node in value.get("frontier") or ()),
                versions_seen={node: make_versions(*map(int, v)) for node, v in seen.items()},
                join_progress={key: tuple(done) for key, done in joins.items()},
                next_seq=int(value.get("next_seq", 0)),
                interrupt=freeze_mapping(interrupt) if interrupt is not None else None,
                resume=freeze_mapping(value.get("resume") or {}),
                paused_before=int(paused_before) if paused_before is not None else None,
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"malformed scheduling cursor: {exc!r}") from exc


class StepPlan(NamedTuple):
    """What superstep ``step`` does: ``run`` these nodes, ``skipped`` these (version-gated).

    (Named tuples, this and Barrier: one of each is built per superstep, and a frozen dataclass
    costs several times as much to build.)"""

    step: int
    run: tuple[str, ...]
    skipped: tuple[str, ...]


class Barrier(NamedTuple):
    """The merged state after a barrier and the channels whose content changed."""

    state: VersionedState
    updated_channels: tuple[str, ...]


# --- planning ----------------------------------------------------------------------------------


def initial_cursor(
    spec: GraphSpec, start_routes: Sequence[str] = (), *, next_seq: int = 0
) -> Cursor:
    """The cursor before step 1: the first frontier is START's edges, then its routers' results.

    ``start_routes`` are the (normalized) results of START's routers on the initial snapshot.
    """
    frontier, progress = next_frontier(spec, 0, (START,), {}, {START: tuple(start_routes)}, {})
    return Cursor(frontier=frontier, join_progress=progress, next_seq=next_seq)


def plan_step(cursor: Cursor, state: VersionedState) -> StepPlan:
    """Split the frontier into nodes to run and nodes to skip.

    A node is skipped when the versions it last ran on equal the current versions (it already ran
    on this exact state); a node's first run is never gated.
    """
    versions = state.versions
    run: list[str] = []
    skipped: list[str] = []
    for node in cursor.frontier:
        seen = cursor.versions_seen.get(node)
        if seen is not None and (seen is versions or seen == versions):
            skipped.append(node)
        else:
            run.append(node)
    return StepPlan(cursor.step + 1, tuple(run), tuple(skipped))


def routers_to_call(
    spec: GraphSpec, ran: Sequence[str], partials: Mapping[str, NodePartial | None]
) -> list[RouterSpec]:
    """The routers whose results the next frontier needs, in order (a ``replace`` skips them)."""
    if not spec.routers:
        return []
    calls: list[RouterSpec] = []
    for node in ran:
        routers = spec.routers.get(node)
        if not routers:
            continue
        partial = partials.get(node)
        command = partial.frontier if partial is not None else None
        if command is not None and command.kind == "replace":
            continue
        calls.extend(routers)
    return calls


def normalize_route(
    source: str, step: int, result: object, targets: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """A router's result as a tuple of ids; anything but a str or a list of str is a RoutingError.

    When the router declared its ``targets``, an id outside them (other than END) is a
    RoutingError too: compile() validated the graph against that declaration.
    """
    if isinstance(result, str):
        routed: tuple[str, ...] = (result,)
    elif isinstance(result, (list, tuple)) and all(
        isinstance(item, str) for item in cast("Sequence[object]", result)
    ):
        routed = tuple(str(item) for item in cast("Sequence[str]", result))
    else:
        raise RoutingError(
            source, step, f"a router must return a node id or a list of ids, got {result!r}"
        )
    if targets is not None:
        undeclared = [t for t in routed if t not in targets and t != END]
        if undeclared:
            raise RoutingError(
                source,
                step,
                f"router returned {', '.join(map(repr, undeclared))}, not among its declared "
                f"targets {list(targets)}",
            )
    return routed


def next_frontier(
    spec: GraphSpec,
    step: int,
    ran: Sequence[str],
    partials: Mapping[str, NodePartial | None],
    routes: Mapping[str, Sequence[str]],
    join_progress: Mapping[str, tuple[str, ...]],
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The next frontier (SPEC §3.1 step 6) and the updated join progress.

    Per ran node, in order: its ``replace`` command's targets, else its unconditional edges then
    its routers' results (``routes[node]``); then its ``append`` targets; then the targets of joins
    it completes. Deduplicated with order kept, END dropped. Unknown ids raise RoutingError.
    """
    frontier: dict[str, None] = {}
    progress: dict[str, set[str]] | None = None
    if spec.joins:
        progress = {key: set(done) for key, done in join_progress.items()}
        # A join counts sources completed since its target last ran: running the target resets it.
        for join in spec.joins:
            if join.target in ran:
                progress.pop(join.key, None)
    for node in ran:
        partial = partials.get(node)
        command = partial.frontier if partial is not None else None
        if command is not None and command.kind == "replace":
            _add_targets(spec, frontier, node, step, command.targets, "frontier command")
        else:
            for target in spec.edges.get(node, ()):
                frontier[target] = None
            routed = routes.get(node)
            if routed:
                _add_targets(spec, frontier, node, step, routed, "router")
        if command is not None and command.kind == "append":
            _add_targets(spec, frontier, node, step, command.targets, "frontier command")
        if progress is not None:
            _complete_joins(spec, node, progress, frontier)
    frontier.pop(END, None)
    if progress is None:
        return tuple(frontier), dict(join_progress)
    # Stored in the join's source order so the cursor JSON is deterministic.
    by_key = {join.key: join for join in spec.joins}
    return tuple(frontier), {
        key: tuple(src for src in by_key[key].sources if src in done)
        for key, done in progress.items()
        if key in by_key
    }


def _add_targets(
    spec: GraphSpec,
    frontier: dict[str, None],
    source: str,
    step: int,
    targets: Sequence[str],
    what: str,
) -> None:
    for target in targets:
        if target != END and target not in spec.nodes:
            raise RoutingError(source, step, f"{what} named the unknown node {target!r}")
        frontier[target] = None


def _complete_joins(
    spec: GraphSpec, node: str, progress: dict[str, set[str]], frontier: dict[str, None]
) -> None:
    for join in spec.joins_from(node):
        done = progress.setdefault(join.key, set())
        done.add(node)
        if len(done) == len(join.sources):  # the builder deduplicates join sources
            frontier[join.target] = None
            del progress[join.key]


def advance(
    cursor: Cursor,
    plan: StepPlan,
    seen: Mapping[str, int],
    frontier: tuple[str, ...],
    join_progress: Mapping[str, tuple[str, ...]],
    *,
    next_seq: int,
) -> Cursor:
    """The cursor after ``plan`` completed: ran nodes remember ``seen`` (the versions they ran on)."""
    versions_seen = dict(cursor.versions_seen)
    for node in plan.run:
        versions_seen[node] = seen
    resume = cursor.resume
    if resume:
        resume = {node: value for node, value in resume.items() if node not in plan.run}
    # The constructor, not dataclasses.replace: this runs every superstep and replace() on a
    # frozen slotted class costs several times as much.
    after = Cursor(
        step=plan.step,
        frontier=frontier,
        versions_seen=versions_seen,
        join_progress=dict(join_progress) if join_progress else EMPTY_DICT,
        next_seq=next_seq,
        resume=resume,
    )
    previous = cursor._json_seen  # pyright: ignore[reportPrivateUsage]
    if previous is not None and plan.run:
        json_seen = dict(previous)
        entry = FrozenList(_SEEN(seen))  # frozen: shared by every cursor that carries it
        for node in plan.run:
            json_seen[node] = entry
        object.__setattr__(after, "_json_seen", json_seen)
    elif previous is not None:
        object.__setattr__(after, "_json_seen", previous)
    return after


# --- the barrier -------------------------------------------------------------------------------


def merge_barrier(
    spec: GraphSpec,
    state: VersionedState,
    step: int,
    results: Sequence[tuple[str, NodePartial]],
    *,
    frozen: bool = False,
) -> Barrier:
    """Merge partials **in the given (frontier) order** into ``state``.

    Channel reducers run once per partial that writes the channel, in registration order; per-key
    ``extra`` reducers combine writes to their key (a ``None`` value deletes the key); errors get
    their node and step filled in. A channel's version increases by one iff its content changed.
    ``frozen=True``: every partial already went through :func:`freeze_partial` (the executor's).
    """
    message_updates: list[tuple[str, tuple[Any, ...]]] = []
    error_updates: list[tuple[str, tuple[ErrorEvent, ...]]] = []
    writes: list[tuple[str, Mapping[str, Any]]] = []
    for node, partial in results:
        if not frozen:
            partial = freeze_partial(node, partial, spec.state_schema)
        if partial.messages:
            message_updates.append((node, partial.messages))
        if partial.errors:
            error_updates.append((node, _stamp_errors(node, step, partial.errors)))
        if partial.extra:
            writes.append((node, partial.extra))
    messages, extra, errors = state.messages, state.extra, state.errors
    reducers = spec.reducers
    if message_updates:
        message_fns = reducers.for_channel(ChannelType.MESSAGES)
        messages = merge_sequence(
            ChannelType.MESSAGES, message_fns, add_messages, messages, message_updates
        )
        if message_fns != (add_messages,) and messages is not state.messages:
            # A custom reducer may produce anything: check what it made (default merges only
            # concatenate messages already checked by freeze_partial).
            check_messages(messages)
    if error_updates:
        errors = merge_sequence(
            ChannelType.ERRORS,
            reducers.for_channel(ChannelType.ERRORS),
            add_errors,
            errors,
            error_updates,
        )
    if writes:
        extra = merge_extra(spec, extra, writes)
    bump_messages = _changed(state.messages, messages)
    bump_extra = _changed(state.extra, extra)
    bump_errors = _changed(state.errors, errors)
    if not (bump_messages or bump_extra or bump_errors):
        return Barrier(state, ())
    old = state.versions
    versions = make_versions(
        old["messages"] + bump_messages, old["extra"] + bump_extra, old["errors"] + bump_errors
    )
    # Every value is already checked and frozen: the previous state's, the partials' (by
    # freeze_partial) and the reducers' results (frozen in _reducing.merge_extra), so no re-validation.
    merged = trusted_state(messages, cast(FrozenDict, extra), errors, versions, state.schema)
    updated = tuple(
        ch
        for ch, bump in zip(_CHANNELS, (bump_messages, bump_extra, bump_errors), strict=True)
        if bump
    )
    return Barrier(merged, updated)


def record_failure(
    spec: GraphSpec, state: VersionedState, step: int, error: ErrorEvent
) -> VersionedState:
    """``state`` with a fatal error appended (nothing else of the failed step is merged).

    When the errors channel's own reducer is what fails, the error is appended without it, so
    the failure is still recorded.
    """
    try:
        return merge_barrier(
            spec, state, step, [(error.node_id or "", NodePartial(errors=(error,)))]
        ).state
    except ReducerError:
        versions = state.versions
        bumped = make_versions(versions["messages"], versions["extra"], versions["errors"] + 1)
        return trusted_state(
            state.messages,
            cast(FrozenDict, state.extra),
            (*state.errors, error),
            bumped,
            state.schema,
        )


def _changed(old: object, new: object) -> bool:
    return new is not old and new != old


def _stamp_errors(node: str, step: int, errors: tuple[ErrorEvent, ...]) -> tuple[ErrorEvent, ...]:
    if all(e.node_id is not None and e.step is not None for e in errors):
        return errors
    return tuple(
        replace(
            e,
            node_id=e.node_id if e.node_id is not None else node,
            step=e.step if e.step is not None else step,
        )
        for e in errors
    )
