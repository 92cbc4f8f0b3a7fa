"""What several tests share: an emitter that keeps every event, and a chain that emits one."""

from __future__ import annotations

import weavegraph as wg
from weavegraph.events.model import Event


class Collector:
    """A small emitter that keeps every event (thread-safe: list.append is atomic)."""

    def __init__(self, *, lifecycle: bool = False) -> None:
        self.lifecycle = lifecycle
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def ends(self) -> list[str]:
        """The stream-end messages received."""
        return [e.message for e in self.events if e.is_stream_end]


def emitting_chain() -> wg.App:
    """START -> a -> b -> c -> END; each node emits a ``work`` event and sets its own key."""

    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        ctx.emit("work", ctx.node_id)
        return wg.NodePartial(extra={ctx.node_id: True})

    builder = wg.GraphBuilder()
    for name in ("a", "b", "c"):
        builder.add_node(name, node)
    builder.add_edge(wg.START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", wg.END)
    return builder.compile()
