"""weavegraph: concurrent, stateful, graph-driven workflows.

The public API is re-exported here; everything else lives in private modules.
"""

from . import diagnostics as diagnostics
from . import llm as llm
from . import prebuilt as prebuilt
from . import reducers as reducers
from . import testing as testing
from .app import App as App
from .checkpoint import Checkpoint as Checkpoint
from .checkpoint import Checkpointer as Checkpointer
from .checkpoint import InMemoryCheckpointer as InMemoryCheckpointer
from .checkpoint import PostgresCheckpointer as PostgresCheckpointer
from .checkpoint import SessionInfo as SessionInfo
from .checkpoint import SQLiteCheckpointer as SQLiteCheckpointer
from .checkpoint import StepInfo as StepInfo
from .config import CheckpointerType as CheckpointerType
from .context import NodeContext as NodeContext
from .errors import CheckpointConflict as CheckpointConflict
from .errors import CheckpointError as CheckpointError
from .errors import ConfigError as ConfigError
from .errors import CycleDetected as CycleDetected
from .errors import DatabaseSchemaTooNew as DatabaseSchemaTooNew
from .errors import DuplicateEdge as DuplicateEdge
from .errors import DuplicateNode as DuplicateNode
from .errors import EdgeFromEnd as EdgeFromEnd
from .errors import GraphCompileError as GraphCompileError
from .errors import Interrupted as Interrupted
from .errors import InvalidSessionId as InvalidSessionId
from .errors import LeaseLost as LeaseLost
from .errors import MissingEntry as MissingEntry
from .errors import MissingInput as MissingInput
from .errors import NodeError as NodeError
from .errors import NodeRunError as NodeRunError
from .errors import NonJsonValue as NonJsonValue
from .errors import NoPathToEnd as NoPathToEnd
from .errors import NotAWeavegraphDatabase as NotAWeavegraphDatabase
from .errors import ProviderError as ProviderError
from .errors import ReducerError as ReducerError
from .errors import RoutingError as RoutingError
from .errors import RunError as RunError
from .errors import SessionBusy as SessionBusy
from .errors import SessionError as SessionError
from .errors import SessionGraphMismatch as SessionGraphMismatch
from .errors import SessionNotFound as SessionNotFound
from .errors import StateError as StateError
from .errors import StateFieldError as StateFieldError
from .errors import StepLimitExceeded as StepLimitExceeded
from .errors import TypedSlotError as TypedSlotError
from .errors import UnknownNode as UnknownNode
from .errors import UnreachableNodes as UnreachableNodes
from .errors import ValidationFailed as ValidationFailed
from .errors import WeavegraphError as WeavegraphError
from .events import ChannelSink as ChannelSink
from .events import Event as Event
from .events import EventBus as EventBus
from .events import EventSink as EventSink
from .events import EventType as EventType
from .events import JsonLinesSink as JsonLinesSink
from .events import MemorySink as MemorySink
from .events import SinkDiagnostic as SinkDiagnostic
from .events import SinkHealth as SinkHealth
from .events import StdOutSink as StdOutSink
from .events.streaming import EventStream as EventStream
from .graph import GraphBuilder as GraphBuilder
from .graph import Subgraph as Subgraph
from .logs import configure_logging as configure_logging
from .partial import FrontierCommand as FrontierCommand
from .partial import NodePartial as NodePartial
from .partial import Send as Send
from .reducers import ReducerRegistry as ReducerRegistry
from .retry import RetryPolicy as RetryPolicy
from .session_status import PendingInterrupt as PendingInterrupt
from .sessions import AppRunner as AppRunner
from .sessions import PausedReason as PausedReason
from .sessions import SessionInit as SessionInit
from .sessions import StepReport as StepReport
from .sessions import StepResult as StepResult
from .state import ChannelType as ChannelType
from .state import ErrorEvent as ErrorEvent
from .state import Message as Message
from .state import RemoveMessage as RemoveMessage
from .state import Role as Role
from .state import StateKey as StateKey
from .state import StateSnapshot as StateSnapshot
from .state import ToolCall as ToolCall
from .state import VersionedState as VersionedState
from .types import END as END
from .types import START as START
from .types import Node as Node
from .types import NodeKind as NodeKind

__all__ = [
    # nodes and graphs
    "GraphBuilder",
    "App",
    "Subgraph",
    "NodeContext",
    "START",
    "END",
    "Node",
    "NodeKind",
    "NodePartial",
    "FrontierCommand",
    "Send",
    "RetryPolicy",
    # state
    "ChannelType",
    "ErrorEvent",
    "Message",
    "RemoveMessage",
    "Role",
    "StateKey",
    "StateSnapshot",
    "ToolCall",
    "VersionedState",
    "ReducerRegistry",
    # persistence
    "Checkpoint",
    "Checkpointer",
    "CheckpointerType",
    "InMemoryCheckpointer",
    "PostgresCheckpointer",
    "SQLiteCheckpointer",
    "SessionInfo",
    "StepInfo",
    # sessions
    "AppRunner",
    "SessionInit",
    "StepResult",
    "StepReport",
    "PausedReason",
    "PendingInterrupt",
    # events and observability
    "Event",
    "EventType",
    "EventBus",
    "EventSink",
    "EventStream",
    "StdOutSink",
    "MemorySink",
    "ChannelSink",
    "JsonLinesSink",
    "SinkDiagnostic",
    "SinkHealth",
    "configure_logging",
    # errors (weavegraph.errors)
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
    "CheckpointConflict",
    "CheckpointError",
    "DatabaseSchemaTooNew",
    "NotAWeavegraphDatabase",
    "SessionNotFound",
    "LeaseLost",
    "SessionError",
    "SessionBusy",
    "SessionGraphMismatch",
    "InvalidSessionId",
    "ConfigError",
]
