"""Ready-made building blocks for tool-using agents: a tool node, its router, a ReAct agent."""

from ._agent import react_agent as react_agent
from ._tool_node import ToolNode as ToolNode
from ._tool_node import tool_node as tool_node
from ._tool_node import tools_condition as tools_condition

__all__ = ["react_agent", "tool_node", "tools_condition", "ToolNode"]
