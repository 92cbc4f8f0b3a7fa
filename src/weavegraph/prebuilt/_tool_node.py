"""``tool_node`` runs the tool calls of the last assistant message; ``tools_condition`` routes to
it while the model asks for tools."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pydantic

from ..context import NodeContext
from ..llm._tools import Tool, as_tools
from ..partial import NodePartial
from ..state import Message, Role, StateSnapshot, ToolCall
from ..types import END

__all__ = ["TOOLS", "ToolNode", "tool_node", "tools_condition"]

TOOLS = "tools"
"""The id ``react_agent`` gives its tool node, and where ``tools_condition`` routes."""

_log = logging.getLogger(__name__)


class ToolNode:
    """A node that answers the tool calls of the last assistant message, concurrently.

    Each answer is a ``Message.tool`` with the call's ``tool_call_id``, in the order of the calls.
    A tool that raises, arguments that do not fit its schema and an unknown tool name all give an
    error answer (``metadata["is_error"]``) the model reads on its next turn; the run goes on.
    Calls already answered (after a resume) are not run again.
    """

    __slots__ = ("tools",)

    def __init__(self, tools: Iterable[Callable[..., Any] | Tool]) -> None:
        self.tools = {t.name: t for t in as_tools(tools)}

    def __repr__(self) -> str:
        return f"ToolNode({', '.join(self.tools)})"

    async def run(self, snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial | None:
        calls = _pending_calls(snapshot.messages)
        if not calls:
            return None
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._answer(call, ctx)) for call in calls]
        return NodePartial(messages=tuple(task.result() for task in tasks))

    async def _answer(self, call: ToolCall, ctx: NodeContext) -> Message:
        chosen = self.tools.get(call.name)
        if chosen is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return _error(call, f"unknown tool {call.name!r}; the tools are: {known}")
        try:
            content = await chosen.call(call.arguments)
        except pydantic.ValidationError as exc:
            return _error(call, f"invalid arguments for {call.name!r}: {_validation_text(exc)}")
        except Exception as exc:
            # The model sees the failure and may try again; the log keeps the traceback.
            _log.info("tool %r raised (node %r)", call.name, ctx.node_id, exc_info=True)
            return _error(call, f"{type(exc).__name__}: {exc}")
        return Message.tool(content, call.id, name=call.name)


def tool_node(tools: Iterable[Callable[..., Any] | Tool]) -> ToolNode:
    """A node running the last assistant message's tool calls (see :class:`ToolNode`)."""
    return ToolNode(tools)


def tools_condition(snapshot: StateSnapshot) -> str:
    """Route to ``"tools"`` when the last message is an assistant message asking for tools,
    else to ``END``. Use with ``add_conditional_edge(node, tools_condition, targets=["tools",
    wg.END])``."""
    messages = snapshot.messages
    if messages and messages[-1].role == Role.ASSISTANT and messages[-1].tool_calls:
        return TOOLS
    return END


def _pending_calls(messages: Sequence[Message]) -> tuple[ToolCall, ...]:
    """The last assistant message's tool calls that no later tool message answers yet."""
    answered: set[str] = set()
    for message in reversed(messages):
        if message.role == Role.ASSISTANT:
            return tuple(c for c in message.tool_calls if c.id not in answered)
        if message.tool_call_id is not None:
            answered.add(message.tool_call_id)
    return ()


def _error(call: ToolCall, text: str) -> Message:
    return Message(
        Role.TOOL,
        f"Error: {text}",
        name=call.name,
        tool_call_id=call.id,
        metadata={"is_error": True},
    )


def _validation_text(exc: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )
