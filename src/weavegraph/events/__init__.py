"""Events: the model and its JSON schema, the bus, sinks, and streaming a run's events."""

from ..status import RunStatus as RunStatus
from . import model
from .bus import BusMetrics as BusMetrics
from .bus import EventBus as EventBus
from .bus import SinkDiagnostic as SinkDiagnostic
from .bus import SinkHealth as SinkHealth
from .bus import Subscription as Subscription
from .model import INVOCATION_END_SCOPE as INVOCATION_END_SCOPE
from .model import LLM_CHUNK_SCOPE as LLM_CHUNK_SCOPE
from .model import LLM_ERROR_SCOPE as LLM_ERROR_SCOPE
from .model import LLM_FINAL_SCOPE as LLM_FINAL_SCOPE
from .model import STREAM_END_SCOPE as STREAM_END_SCOPE
from .model import Event as Event
from .model import EventEmitter as EventEmitter
from .model import EventType as EventType
from .model import LifecycleKind as LifecycleKind
from .model import NullEmitter as NullEmitter
from .model import StreamEnd as StreamEnd
from .model import diagnostic_event as diagnostic_event
from .model import is_stream_end_json as is_stream_end_json
from .model import lifecycle_event as lifecycle_event
from .model import llm_event as llm_event
from .model import node_event as node_event
from .model import parse_stream_end as parse_stream_end
from .model import stream_end_event as stream_end_event
from .schema import event_schema as event_schema
from .sinks import ChannelSink as ChannelSink
from .sinks import EventSink as EventSink
from .sinks import JsonLinesSink as JsonLinesSink
from .sinks import MemorySink as MemorySink
from .sinks import SinkDispatch as SinkDispatch
from .sinks import StdOutSink as StdOutSink
from .sinks import format_event as format_event
from .streaming import EventStream as EventStream
from .streaming import RunHandle as RunHandle
from .streaming import StreamingRun as StreamingRun

__all__ = [
    "STREAM_END_SCOPE",
    "INVOCATION_END_SCOPE",
    "LLM_CHUNK_SCOPE",
    "LLM_FINAL_SCOPE",
    "LLM_ERROR_SCOPE",
    "Event",
    "EventType",
    "EventEmitter",
    "NullEmitter",
    "LifecycleKind",
    "RunStatus",
    "StreamEnd",
    "node_event",
    "diagnostic_event",
    "llm_event",
    "lifecycle_event",
    "stream_end_event",
    "parse_stream_end",
    "is_stream_end_json",
    "event_schema",
    "EventBus",
    "BusMetrics",
    "SinkDiagnostic",
    "SinkHealth",
    "Subscription",
    "EventSink",
    "SinkDispatch",
    "MemorySink",
    "ChannelSink",
    "JsonLinesSink",
    "StdOutSink",
    "format_event",
    "EventStream",
    "RunHandle",
    "StreamingRun",
]


def __getattr__(name: str) -> object:
    if name == "StreamStatus":  # deprecated alias of weavegraph.status.RunStatus
        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
