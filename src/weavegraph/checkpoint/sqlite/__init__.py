"""The SQLite backend: ``SQLiteCheckpointer`` and what opening a database by URL needs."""

from ._checkpointer import SQLiteCheckpointer as SQLiteCheckpointer
from ._checkpointer import migrate_sqlite as migrate_sqlite
from ._connection import sqlite_path as sqlite_path

__all__ = ["SQLiteCheckpointer", "migrate_sqlite", "sqlite_path"]
