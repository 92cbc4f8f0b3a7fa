"""State: the messages, extra and errors channels, their versions, snapshots and typed slots."""

from ._error_event import ErrorEvent as ErrorEvent
from ._frozen import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from ._frozen import FrozenDict as FrozenDict
from ._frozen import FrozenList as FrozenList
from ._frozen import freeze_json as freeze_json
from ._message import Message as Message
from ._message import Role as Role
from ._message import ToolCall as ToolCall
from ._remove import RemoveMessage as RemoveMessage
from ._schema import StateSchema as StateSchema
from ._typed import StateKey as StateKey
from ._versioned import ChannelType as ChannelType
from ._versioned import StateSnapshot as StateSnapshot
from ._versioned import VersionedState as VersionedState
from ._versioned import VersionedStateBuilder as VersionedStateBuilder
from ._versioned import freeze_extra as freeze_extra
from ._versioned import make_versions as make_versions

__all__ = [
    "MAX_JSON_DEPTH",
    "ChannelType",
    "ErrorEvent",
    "FrozenDict",
    "FrozenList",
    "Message",
    "RemoveMessage",
    "Role",
    "StateSchema",
    "StateKey",
    "StateSnapshot",
    "ToolCall",
    "VersionedState",
    "VersionedStateBuilder",
    "freeze_extra",
    "freeze_json",
    "make_versions",
]
