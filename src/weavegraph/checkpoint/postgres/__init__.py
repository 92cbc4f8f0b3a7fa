"""The PostgreSQL backend: ``PostgresCheckpointer`` (psycopg is imported only when connecting)."""

from ._checkpointer import PostgresCheckpointer as PostgresCheckpointer
from ._checkpointer import migrate_postgres as migrate_postgres

__all__ = ["PostgresCheckpointer", "migrate_postgres"]
