"""Checkpointers: the protocol and its in-memory, SQLite and PostgreSQL backends."""

from ._model import Checkpoint as Checkpoint
from ._model import Checkpointer as Checkpointer
from ._model import SessionInfo as SessionInfo
from ._model import StepInfo as StepInfo
from .memory import InMemoryCheckpointer as InMemoryCheckpointer
from .postgres import PostgresCheckpointer as PostgresCheckpointer
from .sqlite import SQLiteCheckpointer as SQLiteCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "InMemoryCheckpointer",
    "PostgresCheckpointer",
    "SQLiteCheckpointer",
    "SessionInfo",
    "StepInfo",
]
