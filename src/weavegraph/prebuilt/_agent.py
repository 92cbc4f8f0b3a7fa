"""``react_agent``: the tool-calling agent loop as a two-node graph, ``agent`` <-> ``tools``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..app import App
from ..context import NodeContext
from ..graph import GraphBuilder
from ..llm._respond import respond
from ..llm._tools import Tool, as_tools
from ..llm._types import ChatModel
from ..partial import NodePartial
from ..retry import RetryPolicy
from ..state import Message, StateSnapshot
from ..types import END, START
from ._tool_node import TOOLS, ToolNode, tools_condition

__all__ = ["AGENT", "react_agent"]

AGENT = "agent"
"""The id of ``react_agent``'s model node."""


def react_agent(
    model: ChatModel,
    tools: Iterable[Callable[..., Any] | Tool],
    *,
    system: str | None = None,
    retry: RetryPolicy | None = None,
    max_steps: int | None = None,
) -> App:
    """A compiled agent: ``agent`` asks ``model`` (with ``system`` first, when given) and, while
    the answer asks for tools, ``tools`` runs them and hands the results back to ``agent``.

    Start it with the user's message (``wg.VersionedState.new_with_user_message(...)``); the
    final state's last message is the answer. Each model call streams its tokens as ``llm``
    events; every step is checkpointed like any graph's. ``retry`` applies to the model node
    (e.g. ``wg.RetryPolicy(retry_on=wg.ProviderError, retry_if=wg.llm.is_retryable)``);
    ``max_steps`` bounds the loop (two steps per tool round).
    """
    offered = as_tools(tools)
    prompt = (Message.system(system),) if system else ()

    async def agent(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        answer = await respond(ctx, model, (*prompt, *snapshot.messages), tools=offered)
        return NodePartial(messages=(answer,))

    builder = GraphBuilder()
    builder.add_node(AGENT, agent, retry=retry)
    builder.add_node(TOOLS, ToolNode(offered))
    builder.add_edge(START, AGENT)
    builder.add_conditional_edge(AGENT, tools_condition, targets=[TOOLS, END])
    builder.add_edge(TOOLS, AGENT)
    if max_steps is not None:
        builder.with_max_steps(max_steps)
    return builder.compile()
