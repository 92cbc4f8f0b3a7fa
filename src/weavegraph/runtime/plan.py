"""Sans-I/O superstep planning: version gating, routing, joins, and the interrupt decisions.

Everything here is a pure function of its inputs (no asyncio, no clocks, no storage), so the
decisions that make runs deterministic can be tested without an event loop. The loop
(``runtime/loop.py``) runs what :func:`plan_step` says, calls the routers :func:`routers_to_call`
names, merges the results (``runtime/barrier.py``) and moves on with :func:`next_frontier` and
:func:`advance`; whether a session pauses around a step is :func:`pause_before` /
:func:`pause_after`.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, cast

from ..checkpoint import Checkpoint
from ..checkpoint.base import NAMESPACE_SEPARATOR
from ..errors import RoutingError, StateError
from ..graph.spec import GraphSpec, RouterSpec
from ..partial import NodePartial, Send
from ..state import VersionedState, make_versions
from ..state._frozen import EMPTY_DICT, FrozenList, freeze_mapping
from ..status import RunStatus
from ..types import END, START
from .values import PausedReason, StepReport

__all__ = [
    "Cursor",
    "Next",
    "StepPlan",
    "advance",
    "answering_node",
    "cursor_of",
    "initial_cursor",
    "interrupt_key",
    "missing_nodes",
    "next_frontier",
    "normalize_route",
    "pause_after",
    "pause_before",
    "pending_reason",
    "plan_step",
    "ran_nodes",
    "routed",
    "routers_to_call",
    "send_key",
    "standing",
    "task_base",
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
        list(ran_nodes(plan)),
        list(plan.skipped),
        list(frontier),
    )


_CHANNELS = ("messages", "extra", "errors")
_SEEN = operator.itemgetter(*_CHANNELS)


@dataclass(slots=True, kw_only=True, eq=True)
class Cursor:
    """Where a session stands between supersteps; stored as JSON in ``Checkpoint.cursor``.

    Never changed once built: a new cursor replaces it (``advance``, ``dataclasses.replace``).
    (Not ``frozen=True``: a frozen class's constructor sets each of its eleven fields through
    ``object.__setattr__``, and one cursor is built every superstep.)

    ``step`` is the last recorded superstep (0 before any), ``frontier`` what runs next,
    ``versions_seen`` the channel versions each node last ran on (version gating), ``join_progress``
    the join sources completed since each join's target last ran, ``next_seq`` the next event
    sequence number, ``interrupt`` a pending dynamic interrupt (``{"node", "value"}``), ``resume``
    the values resumed nodes receive from ``ctx.interrupt``, and ``paused_before`` the step before
    which an ``interrupt_before`` pause was already taken (so asking again runs that step).
    A frontier of just ``START`` means the start itself failed (its routing) and is retried.
    ``sends`` are the ``wg.Send`` tasks of the next step (after the frontier's nodes, in the order
    they were produced). ``tasks_of`` is set while the next step is one that failed or paused:
    the step its tasks were planned after, under which their finished results are saved.
    """

    step: int = 0
    frontier: tuple[str, ...] = ()
    versions_seen: Mapping[str, Mapping[str, int]] = EMPTY_DICT
    join_progress: Mapping[str, tuple[str, ...]] = EMPTY_DICT
    next_seq: int = 0
    interrupt: Mapping[str, Any] | None = None
    resume: Mapping[str, Any] = EMPTY_DICT
    paused_before: int | None = None
    sends: tuple[Send, ...] = ()
    tasks_of: int | None = None
    # ``versions_seen`` in its JSON form, computed once and then carried from cursor to cursor by
    # advance() (only the nodes that ran change), so a checkpoint does not re-encode the table.
    _json_seen: dict[str, FrozenList] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def idle(self) -> bool:
        """Nothing left to run: no frontier and no pending Send."""
        return not self.frontier and not self.sends

    def pending(self) -> tuple[str, ...]:
        """The nodes the next step runs: the frontier, then the targets of pending Sends."""
        if not self.sends:
            return self.frontier
        return tuple(dict.fromkeys((*self.frontier, *(send.node for send in self.sends))))

    def to_json_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "step": self.step,
            "frontier": list(self.frontier),
            "versions_seen": dict(self.json_seen()),
            "join_progress": {key: list(done) for key, done in self.join_progress.items()},
            "next_seq": self.next_seq,
            "interrupt": dict(self.interrupt) if self.interrupt is not None else None,
            "resume": dict(self.resume),
            "paused_before": self.paused_before,
        }
        if self.sends:  # only when there are some: most steps have none
            value["sends"] = [[send.node, send.input] for send in self.sends]
        if self.tasks_of is not None:
            value["tasks_of"] = self.tasks_of
        return value

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
            tasks_of: Any = value.get("tasks_of")
            sends: Sequence[Sequence[Any]] = value.get("sends") or ()
            return cls(
                step=int(value.get("step", 0)),
                frontier=tuple(str(node) for node in value.get("frontier") or ()),
                versions_seen={node: make_versions(*map(int, v)) for node, v in seen.items()},
                join_progress={key: tuple(done) for key, done in joins.items()},
                next_seq=int(value.get("next_seq", 0)),
                interrupt=freeze_mapping(interrupt) if interrupt is not None else None,
                resume=freeze_mapping(value.get("resume") or {}),
                paused_before=int(paused_before) if paused_before is not None else None,
                sends=tuple(Send(str(node), arg) for node, arg in sends),
                tasks_of=int(tasks_of) if tasks_of is not None else None,
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"malformed scheduling cursor: {exc!r}") from exc


class StepPlan(NamedTuple):
    """What superstep ``step`` does: ``run`` these nodes, ``skipped`` these (version-gated), and
    the ``sends`` tasks.

    Task indexes: a frontier node's is its position in the frontier (``at``, one per run node),
    a Send's is ``len(frontier)`` plus its position among the sends, so they stay the same when a
    failed or paused step runs again (gating may then decide differently).

    (Named tuples, this and Barrier: one of each is built per superstep, and a frozen dataclass
    costs several times as much to build.)"""

    step: int
    run: tuple[str, ...]
    skipped: tuple[str, ...]
    sends: tuple[Send, ...] = ()
    at: tuple[int, ...] = ()
    first_send: int = 0


class Next(NamedTuple):
    """What follows a step: the next frontier, the next step's Sends and the join progress."""

    frontier: tuple[str, ...]
    sends: tuple[Send, ...]
    join_progress: dict[str, tuple[str, ...]]


# --- planning ----------------------------------------------------------------------------------


def initial_cursor(
    spec: GraphSpec, start_routes: Sequence[str] = (), *, next_seq: int = 0
) -> Cursor:
    """The cursor before step 1: the first frontier is START's edges, then its routers' results.

    ``start_routes`` are the (normalized) results of START's routers on the initial snapshot.
    """
    after = next_frontier(spec, 0, ((START, None),), {START: tuple(start_routes)}, {})
    return Cursor(
        frontier=after.frontier,
        join_progress=after.join_progress,
        next_seq=next_seq,
        sends=after.sends,
    )


def plan_step(cursor: Cursor, state: VersionedState) -> StepPlan:
    """Split the frontier into nodes to run and nodes to skip; every pending Send runs.

    A node is skipped when the versions it last ran on equal the current versions (it already ran
    on this exact state); a node's first run is never gated, and neither is a Send task.
    """
    versions = state.versions
    frontier = cursor.frontier
    if len(frontier) == 1:  # chains and loops: one node, gated or not
        seen = cursor.versions_seen.get(frontier[0])
        if seen is None or (seen is not versions and seen != versions):
            return StepPlan(cursor.step + 1, frontier, (), cursor.sends, (0,), 1)
    if cursor.versions_seen.keys().isdisjoint(frontier):  # first runs (fan-outs): none gated
        count = len(frontier)
        return StepPlan(cursor.step + 1, frontier, (), cursor.sends, tuple(range(count)), count)
    run: list[str] = []
    skipped: list[str] = []
    at: list[int] = []
    for index, node in enumerate(frontier):
        seen = cursor.versions_seen.get(node)
        if seen is not None and (seen is versions or seen == versions):
            skipped.append(node)
        else:
            run.append(node)
            at.append(index)
    return StepPlan(
        cursor.step + 1, tuple(run), tuple(skipped), cursor.sends, tuple(at), len(frontier)
    )


def ran_nodes(plan: StepPlan) -> tuple[str, ...]:
    """The nodes a step ran, each once: the frontier's, then the Sends' targets."""
    if not plan.sends:
        return plan.run
    return tuple(dict.fromkeys((*plan.run, *(send.node for send in plan.sends))))


def send_key(send: Send, index: int) -> str:
    """How a Send task is named where tasks are listed by name (``node:index``)."""
    return f"{send.node}:{index}"


def task_base(cursor: Cursor) -> int:
    """The step under which the next step's finished task results are saved (see ``tasks_of``)."""
    return cursor.tasks_of if cursor.tasks_of is not None else cursor.step


def routers_to_call(
    spec: GraphSpec, tasks: Sequence[tuple[str, NodePartial | None]]
) -> list[RouterSpec]:
    """The routers whose results the next frontier needs, in order: each node's once, unless
    every task of it replaced the frontier."""
    if not spec.routers:
        return []
    calls: list[RouterSpec] = []
    called: set[str] = set()
    for node, partial in tasks:
        if node in called:
            continue
        routers = spec.routers.get(node)
        if not routers:
            continue
        command = partial.frontier if partial is not None else None
        if command is not None and command.kind == "replace":
            continue
        called.add(node)
        calls.extend(routers)
    return calls


Route = str | Send
"""One item of a router's result: a node id or a Send."""


def normalize_route(
    source: str, step: int, result: object, targets: tuple[str, ...] | None = None
) -> tuple[Route, ...]:
    """A router's result as a tuple of ids and Sends; anything but a str, a Send or a list of
    them is a RoutingError.

    When the router declared its ``targets``, an id (or a Send's node) outside them (other than
    END) is a RoutingError too: compile() validated the graph against that declaration.
    """
    if type(result) is str and (targets is None or result in targets or result == END):
        return (result,)  # the common case, told without the general checks below
    if isinstance(result, str | Send):
        routed: tuple[Route, ...] = (result,)
    elif isinstance(result, (list, tuple)) and all(
        isinstance(item, str | Send) for item in cast("Sequence[object]", result)
    ):
        routed = tuple(cast("Sequence[Route]", result))
    else:
        raise RoutingError(
            source,
            step,
            f"a router must return a node id, a Send or a list of them, got {_short(cast(object, result))}",
        )
    if targets is not None:
        undeclared = [
            name
            for name in (t.node if isinstance(t, Send) else t for t in routed)
            if name not in targets and name != END
        ]
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
    tasks: Sequence[tuple[str, NodePartial | None]],
    routes: Mapping[str, Sequence[Route]],
    join_progress: Mapping[str, tuple[str, ...]],
) -> Next:
    """The next frontier (the routing step of a superstep), the next step's Sends and the join
    progress.

    ``tasks`` are the step's tasks in task order, each a node and what it returned (a node may
    have several: Send tasks). Per task: its ``replace`` command's targets, else (once per node)
    its unconditional edges then its routers' results (``routes[node]``); then its ``append``
    targets; then (once per node) the targets of joins it completes. Ids are deduplicated with
    order kept, END dropped; Sends (returned by the task, then by its routers) are kept in the
    order produced, never deduplicated. Unknown ids raise RoutingError.
    """
    if len(tasks) == 1 and not spec.joins:
        single = _single_target(spec, tasks[0], routes)
        if single is not None:
            return Next(single, (), dict(join_progress))
    frontier: dict[str, None] = {}
    sends: list[Send] = []
    progress: dict[str, set[str]] | None = None
    if spec.joins:
        progress = {key: set(done) for key, done in join_progress.items()}
        ran = {node for node, _ in tasks}
        # A join counts sources completed since its target last ran: running the target resets it.
        for join in spec.joins:
            if join.target in ran:
                progress.pop(join.key, None)
    expanded: set[str] = set()
    joined: set[str] = set()
    for node, partial in tasks:
        command = partial.frontier if partial is not None else None
        if partial is not None and partial.sends:
            _add_sends(spec, sends, node, step, partial.sends)
        if command is not None and command.kind == "replace":
            _add_targets(spec, frontier, sends, node, step, command.targets, "frontier command")
        elif node not in expanded:
            expanded.add(node)
            for target in spec.edges.get(node, ()):
                frontier[target] = None
            routed = routes.get(node)
            if routed:
                _add_targets(spec, frontier, sends, node, step, routed, "router")
        if command is not None and command.kind == "append":
            _add_targets(spec, frontier, sends, node, step, command.targets, "frontier command")
        if progress is not None and node not in joined:
            joined.add(node)
            _complete_joins(spec, node, progress, frontier)
    frontier.pop(END, None)
    if progress is None:
        return Next(tuple(frontier), tuple(sends), dict(join_progress))
    # Stored in the join's source order so the cursor JSON is deterministic.
    by_key = {join.key: join for join in spec.joins}
    return Next(
        tuple(frontier),
        tuple(sends),
        {
            key: tuple(src for src in by_key[key].sources if src in done)
            for key, done in progress.items()
            if key in by_key
        },
    )


def _single_target(
    spec: GraphSpec, task: tuple[str, NodePartial | None], routes: Mapping[str, Sequence[Route]]
) -> tuple[str, ...] | None:
    """The frontier after a lone task that leads to exactly one known node, by one edge or one
    routed id (chains and loops), else None (:func:`next_frontier` works it out in full)."""
    node, partial = task
    if partial is not None and (partial.frontier is not None or partial.sends):
        return None
    edges = spec.edges.get(node, ())
    routed = routes.get(node)
    if not routed:
        return edges if len(edges) == 1 and edges[0] != END else None
    if edges or len(routed) != 1:
        return None
    target = routed[0]
    if type(target) is str and target != END and target in spec.nodes:
        return (target,)
    return None


def _add_targets(
    spec: GraphSpec,
    frontier: dict[str, None],
    sends: list[Send],
    source: str,
    step: int,
    targets: Sequence[Route],
    what: str,
) -> None:
    for target in targets:
        if isinstance(target, Send):
            _check_send(spec, source, step, target, what)
            sends.append(target)
            continue
        if target != END and target not in spec.nodes:
            raise RoutingError(source, step, f"{what} named the unknown node {target!r}")
        frontier[target] = None


def _add_sends(
    spec: GraphSpec, sends: list[Send], source: str, step: int, produced: Sequence[Send]
) -> None:
    """A node's own Sends; checked against its declared ``frontier_targets`` when it has some."""
    declared = spec.frontier_targets.get(source)
    for send in produced:
        _check_send(spec, source, step, send, "Send")
        if declared is not None and send.node not in declared:
            raise RoutingError(
                source,
                step,
                f"Send to {send.node!r} is not among the node's declared frontier targets "
                f"{list(declared)}",
            )
    sends.extend(produced)


def _check_send(spec: GraphSpec, source: str, step: int, send: Send, what: str) -> None:
    if send.node not in spec.nodes:
        kind = "the virtual node" if send.node in (START, END) else "the unknown node"
        raise RoutingError(source, step, f"{what} named {kind} {send.node!r}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({type(value).__name__})"


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
    cursor: Cursor, plan: StepPlan, seen: Mapping[str, int], after_step: Next, *, next_seq: int
) -> Cursor:
    """The cursor after ``plan`` completed: ran nodes remember ``seen`` (the versions they ran on).

    A Send task is not a run of its node on the state alone (it had its own input), so it does
    not gate that node's next ordinary run.
    """
    versions_seen = dict(cursor.versions_seen)
    for node in plan.run:
        versions_seen[node] = seen
    resume = cursor.resume
    if resume:
        done = set(plan.run)
        done.update(send_key(send, plan.first_send + i) for i, send in enumerate(plan.sends))
        resume = {key: value for key, value in resume.items() if key not in done}
    join_progress = after_step.join_progress
    # The constructor, not dataclasses.replace: this runs every superstep and replace() on a
    # frozen slotted class costs several times as much.
    after = Cursor(
        step=plan.step,
        frontier=after_step.frontier,
        versions_seen=versions_seen,
        join_progress=dict(join_progress) if join_progress else EMPTY_DICT,
        next_seq=next_seq,
        resume=resume,
        sends=after_step.sends,
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


def routed(cursor: Cursor, after_start: Next) -> Cursor:
    """``cursor`` with the frontier START leads to (``dataclasses.replace`` costs several
    times this: it runs once per run)."""
    return Cursor(
        step=cursor.step,
        frontier=after_start.frontier,
        versions_seen=cursor.versions_seen,
        join_progress=after_start.join_progress,
        next_seq=cursor.next_seq,
        interrupt=cursor.interrupt,
        resume=cursor.resume,
        paused_before=cursor.paused_before,
        sends=after_start.sends,
        tasks_of=cursor.tasks_of,
    )


# --- reading a stored cursor -----------------------------------------------------------------


def cursor_of(checkpoint: Checkpoint) -> Cursor:
    """The scheduling cursor a checkpoint stores (older checkpoints: rebuilt from the frontier)."""
    if not checkpoint.cursor:
        return Cursor(step=checkpoint.step, frontier=checkpoint.frontier)
    return replace(Cursor.from_json_value(checkpoint.cursor), step=checkpoint.step)


def missing_nodes(spec: GraphSpec, frontier: Sequence[str]) -> list[str]:
    """The nodes of a stored frontier this graph does not have (START and END are always there).

    A session continues only on a graph that has its next nodes; checked before anything runs.
    """
    return [node for node in frontier if node not in spec.nodes and node not in (START, END)]


# --- interrupt decisions -----------------------------------------------------------------------


def interrupt_key(pending: Mapping[str, Any]) -> str:
    """Where the answer to a pending interrupt goes in ``Cursor.resume``: the node's id, or
    ``node:index`` when a Send task asked."""
    task = pending.get("task")
    node = str(pending.get("node"))
    return node if task is None else f"{node}:{task}"


def pending_reason(cursor: Cursor) -> PausedReason:
    """The pause a pending dynamic interrupt (``ctx.interrupt``) stands for."""
    pending = cursor.interrupt or {}
    return PausedReason(
        kind="interrupt",
        step=cursor.step,
        nodes=(str(pending.get("node")),),
        value=pending.get("value"),
        namespace=str(pending.get("namespace") or "") or None,
    )


def answering_node(namespace: str, pending: Mapping[str, Any]) -> str:
    """The node of the session at ``namespace`` that runs again to answer ``pending``.

    The asking node itself when it is this session's, else the subgraph node on the path to the
    subgraph that asked (``pending["namespace"]``, a path of node ids below ``namespace``).
    """
    asked_in = str(pending.get("namespace") or "")
    if asked_in == namespace:
        return interrupt_key(pending)
    below = asked_in[len(namespace) + 1 :] if namespace else asked_in
    return below.split(NAMESPACE_SEPARATOR, 1)[0]


def pause_before(cursor: Cursor, plan: StepPlan, before: Collection[str]) -> PausedReason | None:
    """The pause ``interrupt_before`` asks for ahead of ``plan``, or None.

    A pause already taken before this step (``cursor.paused_before``) is not taken again: asked
    again, in this process or after a restart, the step runs.
    """
    hit = tuple(node for node in ran_nodes(plan) if node in before)
    if not hit or cursor.paused_before == plan.step:
        return None
    return PausedReason(kind="before", step=plan.step, nodes=hit)


def pause_after(report: StepReport, after: Collection[str], each_step: bool) -> PausedReason | None:
    """The pause ``interrupt_after`` / ``interrupt_each_step`` asks for after ``report``, or None.

    Also after the last step before END: the session pauses there and completes when run again.
    """
    stopped = tuple(node for node in report.ran_nodes if node in after)
    if not (stopped or each_step):
        return None
    return PausedReason(kind="after" if stopped else "step", step=report.step, nodes=stopped)


def standing(cursor: Cursor) -> RunStatus:
    """How a session stands between runs: waiting for an answer, complete, or stopped mid-way."""
    if cursor.interrupt is not None:
        return RunStatus.INTERRUPTED
    return RunStatus.COMPLETED if cursor.idle else RunStatus.STOPPED
