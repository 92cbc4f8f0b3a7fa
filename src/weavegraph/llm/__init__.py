"""Models and tools: stream a chat model's answer into the run's events, describe functions as
tools the model may call.

``respond(ctx, model, messages, tools=...)`` is the one call a node makes; ``OpenAIChat``,
``AnthropicChat`` and ``LangChainChat`` are adapters on the providers' own SDKs (each an optional
extra: ``pip install 'weavegraph[openai]'``, ``[anthropic]``, ``[langchain]``); any object with
``provider``, ``model`` and an async ``stream`` method is a ``ChatModel`` too.
"""

from ._anthropic import AnthropicChat as AnthropicChat
from ._errors import is_retryable as is_retryable
from ._factory import chat_model as chat_model
from ._langchain import LangChainChat as LangChainChat
from ._openai import OpenAIChat as OpenAIChat
from ._respond import respond as respond
from ._tools import Tool as Tool
from ._tools import tool as tool
from ._tools import tool_schema as tool_schema
from ._types import ChatModel as ChatModel
from ._types import StreamItem as StreamItem
from ._types import TextDelta as TextDelta
from ._types import ToolCallDelta as ToolCallDelta

__all__ = [
    "respond",
    "ChatModel",
    "StreamItem",
    "TextDelta",
    "ToolCallDelta",
    "OpenAIChat",
    "AnthropicChat",
    "LangChainChat",
    "chat_model",
    "Tool",
    "tool",
    "tool_schema",
    "is_retryable",
]
