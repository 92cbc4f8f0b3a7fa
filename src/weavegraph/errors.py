"""One error tree for everything weavegraph raises.

::

    WeavegraphError
    ├── GraphCompileError (ValueError)      compile() found a mistake in the graph
    │   ├── MissingEntry                    nothing leaves START
    │   ├── UnknownNode                     an edge names a node that was never added
    │   ├── EdgeFromEnd                     an edge leaves END
    │   ├── CycleDetected                   a cycle made only of unconditional edges
    │   ├── UnreachableNodes                nodes no path from START reaches
    │   ├── NoPathToEnd                     nodes from which END cannot be reached
    │   ├── DuplicateEdge                   the same edge added twice
    │   └── DuplicateNode                   the same node id added twice
    ├── RunError                            a run stopped
    │   ├── NodeRunError                    a node raised (after retries); __cause__ is the original
    │   ├── RoutingError                    a router raised or routed to an unknown node
    │   ├── StepLimitExceeded               max_steps reached
    │   └── Interrupted                     App.invoke ran into ctx.interrupt: nobody can answer
    ├── StateError (ValueError)             state that cannot be stored or read
    │   ├── NonJsonValue (TypeError)        an `extra` value that is not JSON
    │   ├── TypedSlotError                  a typed slot failed validation or has another schema version
    │   ├── StateFieldError                 a typed state field was written or read with a bad value
    │   └── ReducerError                    a user reducer raised while merging; __cause__ is the original
    ├── NodeError                           raised or recorded by nodes for common problems
    │   ├── MissingInput
    │   ├── ProviderError
    │   └── ValidationFailed
    ├── CheckpointError                     persistence failed; never swallowed
    │   ├── CheckpointConflict              a fenced save found the session moved on; nothing written
    │   ├── DatabaseSchemaTooNew            the database was written by a newer weavegraph
    │   ├── NotAWeavegraphDatabase          a garbage or foreign database file
    │   ├── SessionNotFound (KeyError)
    │   └── LeaseLost                       a run's claim on a session was taken over
    ├── SessionError (ValueError)           a session cannot do what was asked
    │   ├── InvalidSessionId
    │   ├── SessionGraphMismatch            a stored session's next nodes are not in this graph
    │   └── SessionBusy                     another run holds the session (or a request said reject)
    └── ConfigError (ValueError)            bad configuration: URLs, options, MODULE:ATTR

Every error has a stable ``code`` and a ``help`` text; ``weavegraph.diagnostics.render`` shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .types import END

if TYPE_CHECKING:
    from .session_status import PendingInterrupt

__all__ = [
    "WeavegraphError",
    "GraphCompileError",
    "MissingEntry",
    "UnknownNode",
    "EdgeFromEnd",
    "CycleDetected",
    "UnreachableNodes",
    "NoPathToEnd",
    "DuplicateEdge",
    "DuplicateNode",
    "RunError",
    "NodeRunError",
    "RoutingError",
    "StepLimitExceeded",
    "Interrupted",
    "StateError",
    "NonJsonValue",
    "TypedSlotError",
    "StateFieldError",
    "ReducerError",
    "NodeError",
    "MissingInput",
    "ProviderError",
    "ValidationFailed",
    "CheckpointError",
    "CheckpointConflict",
    "DatabaseSchemaTooNew",
    "NotAWeavegraphDatabase",
    "SessionNotFound",
    "LeaseLost",
    "SessionBusy",
    "SessionError",
    "InvalidSessionId",
    "SessionGraphMismatch",
    "ConfigError",
]


class WeavegraphError(Exception):
    """Root of every error weavegraph raises."""

    code: str = "weavegraph::error"
    help: str = "See the message above; run with --debug (CLI) for the full traceback."

    def __init__(self, message: str, *, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if help is not None:
            self.help = help

    @property
    def nodes(self) -> tuple[str, ...]:
        """The graph nodes this error is about (shown by diagnostics)."""
        return ()

    def __str__(self) -> str:
        return self.message


# --- graph compilation -------------------------------------------------------------------------


class GraphCompileError(WeavegraphError, ValueError):
    """``GraphBuilder.compile()`` found a problem. ``problems`` lists every problem found."""

    code = "weavegraph::graph::invalid"
    help = "Fix the graph description; every problem found is listed in err.problems."

    def __init__(self, message: str, *, help: str | None = None) -> None:
        super().__init__(message, help=help)
        self.problems: list[GraphCompileError] = [self]

    def with_problems(self, problems: Sequence[GraphCompileError]) -> GraphCompileError:
        """Attach the full list of problems found (this error first) and return self."""
        self.problems = list(problems)
        return self


class MissingEntry(GraphCompileError):
    """compile() found no edge leaving START."""

    code = "weavegraph::graph::missing_entry"
    help = "Add an edge from START, e.g. builder.add_edge(wg.START, 'first_node')."

    def __init__(self) -> None:
        super().__init__("the graph has no entry: no edge leaves START")


class UnknownNode(GraphCompileError):
    """An edge names a node that was never added (``node``)."""

    code = "weavegraph::graph::unknown_node"
    help = "Add the node with builder.add_node(...) or fix the spelling of the edge."

    def __init__(self, node: str) -> None:
        super().__init__(f"an edge references the unknown node {node!r}")
        self.node = node

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,)


class EdgeFromEnd(GraphCompileError):
    """An edge leaves END (``target`` is where it went)."""

    code = "weavegraph::graph::edge_from_end"
    help = "END is terminal: remove the edge that leaves it."

    def __init__(self, target: str = "") -> None:
        suffix = f" (to {target!r})" if target else ""
        super().__init__(f"an edge leaves END{suffix}")
        self.target = target

    @property
    def nodes(self) -> tuple[str, ...]:
        return (END, self.target) if self.target else (END,)


class CycleDetected(GraphCompileError):
    """Unconditional edges form a cycle (``cycle``, in edge order)."""

    code = "weavegraph::graph::cycle"
    help = (
        "Unconditional edges may not form a cycle; loop through a conditional edge "
        "(add_conditional_edge) or a frontier command instead."
    )

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else ""
        super().__init__(f"unconditional cycle: {path}")

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.cycle


class UnreachableNodes(GraphCompileError):
    """No path from START reaches these nodes (``unreachable``)."""

    code = "weavegraph::graph::unreachable"
    help = (
        "Connect these nodes to START, or declare a router's possible targets with "
        "add_conditional_edge(src, router, targets=[...])."
    )

    def __init__(self, nodes: Sequence[str]) -> None:
        self.unreachable = tuple(nodes)
        super().__init__(f"nodes unreachable from START: {', '.join(self.unreachable)}")

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.unreachable


class NoPathToEnd(GraphCompileError):
    """END cannot be reached from these nodes (``stuck``)."""

    code = "weavegraph::graph::no_path_to_end"
    help = "Every node needs a way to END: add an edge, or declare its router's targets."

    def __init__(self, nodes: Sequence[str]) -> None:
        self.stuck = tuple(nodes)
        super().__init__(f"nodes with no path to END: {', '.join(self.stuck)}")

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.stuck


class DuplicateEdge(GraphCompileError):
    """The same ``source -> target`` edge was added twice."""

    code = "weavegraph::graph::duplicate_edge"
    help = "Remove the second add_edge call."

    def __init__(self, source: str, target: str) -> None:
        super().__init__(f"the edge {source!r} -> {target!r} was added twice")
        self.source = source
        self.target = target

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.source, self.target)


class DuplicateNode(GraphCompileError):
    """The same node id was added twice (``node``)."""

    code = "weavegraph::graph::duplicate_node"
    help = "Node ids must be unique: rename one of the nodes."

    def __init__(self, node: str) -> None:
        super().__init__(f"the node {node!r} was added twice")
        self.node = node

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,)


# --- running -----------------------------------------------------------------------------------


class RunError(WeavegraphError):
    """A run stopped before completing."""

    code = "weavegraph::run::failed"
    help = "With a checkpointer, the last completed step is saved: fix the cause and resume."


class NodeRunError(RunError):
    """A node raised (after its retries). ``__cause__`` is the original exception."""

    code = "weavegraph::run::node_failed"
    help = (
        "The step was not merged and the checkpoint keeps its frontier, so resuming the session "
        "retries it. Record recoverable problems in NodePartial.errors instead of raising."
    )

    def __init__(self, node: str, step: int, message: str) -> None:
        super().__init__(f"node {node!r} failed at step {step}: {message}")
        self.node = node
        self.step = step

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,)


class RoutingError(RunError):
    """A router raised, or routed to a node the graph does not have."""

    code = "weavegraph::run::routing"
    help = "Routers must return ids of nodes added to the graph (or END)."

    def __init__(self, node: str, step: int, message: str) -> None:
        super().__init__(f"routing after {node!r} at step {step} failed: {message}")
        self.node = node
        self.step = step

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,)


class StepLimitExceeded(RunError):
    """The run reached ``max_steps`` supersteps; the last step was checkpointed."""

    code = "weavegraph::run::step_limit"
    help = "Raise the limit with GraphBuilder.with_max_steps(n), or fix the loop's exit condition."

    def __init__(self, session_id: str, step: int) -> None:
        super().__init__(f"session {session_id!r} exceeded the step limit at step {step}")
        self.session_id = session_id
        self.step = step


class Interrupted(RunError):
    """A run without a checkpointer to resume from reached a node's ``ctx.interrupt``.

    ``interrupt`` is the pending ``wg.PendingInterrupt`` (the node and the value it asked with).
    """

    code = "weavegraph::run::interrupted"
    help = (
        "Run graphs that ask for input with wg.AppRunner: the session waits for an answer, "
        "and runner.resume(session_id, answer) continues it."
    )

    def __init__(self, session_id: str, interrupt: PendingInterrupt) -> None:
        super().__init__(
            f"session {session_id!r} is waiting for an answer from node {interrupt.node!r}: "
            f"{interrupt.value!r}"
        )
        self.session_id = session_id
        self.interrupt = interrupt

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.interrupt.node,)


# --- state -------------------------------------------------------------------------------------


class StateError(WeavegraphError, ValueError):
    """State that cannot be stored or read: a wrong type, malformed JSON, a bad reducer result."""

    code = "weavegraph::state::invalid"
    help = "State holds Message and ErrorEvent objects and JSON values in `extra`."


class NonJsonValue(StateError, TypeError):
    """An ``extra`` value (``key``, written by ``node``) that is not JSON."""

    code = "weavegraph::state::non_json"
    help = "Values in `extra` must be JSON: dict, list, str, int, float, bool or None."

    def __init__(self, key: str, detail: str, node: str | None = None) -> None:
        by = f" written by node {node!r}" if node else ""
        super().__init__(f"extra[{key!r}]{by} is not a JSON value: {detail}")
        self.key = key
        self.node = node

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,) if self.node else ()


class TypedSlotError(StateError):
    """A typed slot's value failed validation, or is stored under another schema version."""

    code = "weavegraph::state::typed_slot"
    help = "Check the StateKey's type and schema version against what was written."

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"typed slot {key!r}: {message}")
        self.key = key


class StateFieldError(StateError):
    """A field of a typed state schema (``GraphBuilder(state=Schema)``) got a value that does not
    validate, or a write named a field the schema does not have."""

    code = "weavegraph::state::field"
    help = "Write only the schema's fields, with values of their declared types."

    def __init__(self, field: str, node: str | None, detail: str) -> None:
        by = f" written by node {node!r}" if node else ""
        super().__init__(f"state field {field!r}{by}: {detail}")
        self.field = field
        self.node = node

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,) if self.node else ()


class ReducerError(StateError):
    """A user reducer raised while merging a node's update; ``__cause__`` is the original.

    The step fails like a failing node: nothing of it is merged, an ErrorEvent is
    recorded and the checkpoint keeps the frontier.
    """

    code = "weavegraph::state::reducer_failed"
    help = (
        "Fix the reducer (it must combine any two values it can be given) or what the node writes."
    )

    def __init__(self, channel: str, key: str | None, node: str, detail: str) -> None:
        channel = str(channel)  # (a ChannelType's repr would show the enum)
        where = f"extra[{key!r}]" if key is not None else f"the {channel!r} channel"
        super().__init__(f"the reducer of {where} failed merging node {node!r}'s update: {detail}")
        self.channel = channel
        self.key = key
        self.node = node

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node,) if self.node else ()


# --- errors nodes raise or record --------------------------------------------------------------


class NodeError(WeavegraphError):
    """Common problems a node reports (raise it, or record it in NodePartial.errors)."""

    code = "weavegraph::node::error"
    help = "Raise it to fail the run, or record it in NodePartial.errors to let the run continue."


class MissingInput(NodeError):
    """A node's required input (``what``) is absent from the state."""

    code = "weavegraph::node::missing_input"
    help = "Make an earlier node (or the initial state) provide this input."

    def __init__(self, what: str) -> None:
        super().__init__(f"missing input: {what}")
        self.what = what


class ProviderError(NodeError):
    """An external provider (``provider``) failed: ``status`` is its HTTP status (None when there
    was no HTTP answer: a refused or cut connection, a malformed or unfinished stream) and
    ``message`` is what the provider said.

    ``retryable`` tells whether trying again may help (rate limits, overload, server errors and
    lost connections); ``wg.RetryPolicy(retry_on=ProviderError, retry_if=wg.llm.is_retryable)``
    retries exactly those.
    """

    code = "weavegraph::node::provider"
    help = "The provider failed: check its credentials and availability, or retry the node."

    RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})
    """HTTP statuses below 500 worth retrying (timeout, conflict, rate limit); 5xx always are."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retryable = _retryable(status) if retryable is None else retryable

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"provider {self.provider!r} failed{status}: {self.message}"


def _retryable(status: int | None) -> bool:
    return status is None or status >= 500 or status in ProviderError.RETRYABLE_STATUSES


class ValidationFailed(NodeError):
    """A node rejected its input as invalid."""

    code = "weavegraph::node::validation"
    help = "The node rejected its input; check what earlier nodes wrote to the state."

    def __init__(self, message: str) -> None:
        super().__init__(f"validation failed: {message}")


# --- persistence -------------------------------------------------------------------------------


class CheckpointError(WeavegraphError):
    """Saving or loading a checkpoint failed. The run stops; nothing is swallowed."""

    code = "weavegraph::checkpoint::failed"
    help = "Check that the database is reachable and writable; the run stopped before going on."


class CheckpointConflict(CheckpointError):
    """A save (or events append) was refused because the stored session is not what it builds on.

    ``expected`` is the step the save builds on (-1: a new session; None: no check was asked, the
    conflict is a step or event ``seq`` already stored), ``stored`` the session's latest stored
    step (None: no such session). Nothing of the refused save was written.
    """

    code = "weavegraph::checkpoint::conflict"
    help = (
        "Another process (or task) is driving this session and saved first; reload the session "
        "(load_latest / resume) before continuing, or leave it to the other writer."
    )

    def __init__(
        self, session_id: str, expected: int | None, stored: int | None, *, reason: str = ""
    ) -> None:
        if reason:
            message = f"session {session_id!r}: {reason}"
        else:
            wanted = "a new session" if expected == -1 else f"step {expected}"
            found = "it does not exist" if stored is None else f"its latest step is {stored}"
            message = f"session {session_id!r} moved on: the save builds on {wanted}, but {found}"
        super().__init__(message)
        self.session_id = session_id
        self.expected = expected
        self.stored = stored


class DatabaseSchemaTooNew(CheckpointError):
    """The database was written by a newer weavegraph (``found`` > ``supported``)."""

    code = "weavegraph::checkpoint::schema_too_new"
    help = "Upgrade weavegraph to open this database; it was left untouched."

    def __init__(self, location: str, found: int, supported: int) -> None:
        super().__init__(
            f"{location} has schema version {found}, this weavegraph supports up to {supported}"
        )
        self.found = found
        self.supported = supported


class NotAWeavegraphDatabase(CheckpointError):
    """The file or schema is not a weavegraph database; it is left untouched."""

    code = "weavegraph::checkpoint::foreign_database"
    help = "Point --db / WEAVEGRAPH_SQLITE_URL at a weavegraph database or a new file; the file was left untouched."

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location} is not a weavegraph database: {reason}")
        self.location = location


class SessionNotFound(CheckpointError, KeyError):
    """No stored session has this id (also a KeyError)."""

    code = "weavegraph::checkpoint::session_not_found"
    help = "List sessions with `weavegraph sessions list`."

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id

    def __str__(self) -> str:
        return self.message


class LeaseLost(CheckpointError):
    """This process no longer holds the session's claim: another worker took it over (the lease
    expired) or it was released. Nothing was written; the process must drop the session."""

    code = "weavegraph::queue::lease_lost"
    help = (
        "Another worker owns the session now and continues it from its last committed step; "
        "raise --lease if steps often outlast it."
    )

    def __init__(self, session_id: str, detail: str) -> None:
        super().__init__(f"lost the claim on session {session_id!r}: {detail}")
        self.session_id = session_id


class SessionError(WeavegraphError, ValueError):
    """A session cannot do what was asked (its id, or its graph)."""

    code = "weavegraph::session::invalid"
    help = "List sessions and their state with `weavegraph sessions list`."


class InvalidSessionId(SessionError):
    """A session id that is not 1-128 letters, digits, '.', '_', ':' or '-' (or is '.' or '..')."""

    code = "weavegraph::session::invalid_id"
    help = (
        "Session ids are 1-128 characters of letters, digits, '.', '_', ':' and '-', "
        "other than '.' and '..'."
    )

    def __init__(self, session_id: object) -> None:
        super().__init__(f"invalid session id {session_id!r}")


class SessionGraphMismatch(SessionError):
    """A stored session's next nodes are missing from the graph it is being continued with."""

    code = "weavegraph::session::graph_mismatch"
    help = "Resume the session with the graph that created it, or start a new session id."

    def __init__(self, session_id: str, missing: Sequence[str]) -> None:
        super().__init__(
            f"session {session_id!r} was not made by this graph: its next node(s) "
            f"{', '.join(map(repr, missing))} are not in it"
        )
        self.session_id = session_id
        self.missing = tuple(missing)


class SessionBusy(SessionError):
    """The session is already running: another run holds its claim (on PostgreSQL every run
    claims the session it drives), or a queued request's multitask policy is ``reject``."""

    code = "weavegraph::session::busy"
    help = (
        "Wait for the run to end (a holder that died lets go when its lease expires), or send "
        "the request with multitask='enqueue' (run it next), 'interrupt' (stop the run at its "
        "next step, then run this) or 'rollback'."
    )

    def __init__(
        self, session_id: str, *, holder: str | None = None, expires_in: float | None = None
    ) -> None:
        message = f"session {session_id!r} is already running"
        if holder is not None:
            message += f" (claimed by {holder}"
            if expires_in is not None:
                message += f"; its lease expires in {max(expires_in, 0):.0f} s unless renewed"
            message += ")"
        super().__init__(message)
        self.session_id = session_id
        self.holder = holder


class ConfigError(WeavegraphError, ValueError):
    """Bad configuration: URLs, options, backend names, MODULE:ATTR targets."""

    code = "weavegraph::config::invalid"
    help = "Check the command-line options and WEAVEGRAPH_* environment variables."
