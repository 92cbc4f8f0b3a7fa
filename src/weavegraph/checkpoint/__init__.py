"""Checkpointers: the protocol and records (``base``), and the memory, SQLite and PostgreSQL backends.

Each backend lives in its own module or package with its schema and migrations beside it; the pure
pieces both SQL backends share (``_codec``, the save plans) live here. No backend imports another.
"""

from .base import Checkpoint as Checkpoint
from .base import Checkpointer as Checkpointer
from .base import Maintainable as Maintainable
from .base import MigrationResult as MigrationResult
from .base import PruneResult as PruneResult
from .base import SessionInfo as SessionInfo
from .base import StepInfo as StepInfo
from .base import StorageStats as StorageStats
from .base import TaskResultStore as TaskResultStore
from .memory import InMemoryCheckpointer as InMemoryCheckpointer
from .postgres import PostgresCheckpointer as PostgresCheckpointer
from .sqlite import SQLiteCheckpointer as SQLiteCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "InMemoryCheckpointer",
    "Maintainable",
    "MigrationResult",
    "PostgresCheckpointer",
    "PruneResult",
    "SQLiteCheckpointer",
    "SessionInfo",
    "StepInfo",
    "StorageStats",
    "TaskResultStore",
]
