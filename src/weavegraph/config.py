"""Configuration: which checkpointer, which database URL (in a fixed order).

SQLite: ``WEAVEGRAPH_SQLITE_URL``, then the URL given in code, then ``SQLITE_DB_NAME`` (a file name,
used as ``sqlite://{name}``), then ``sqlite://weavegraph.db``. PostgreSQL: ``WEAVEGRAPH_POSTGRES_URL``,
then the URL given in code, then ``DATABASE_URL``, then ``postgresql://localhost/weavegraph``.
Variables come from the process environment or, for names it does not define, from a ``.env`` file
in the working directory (read at each resolution; the environment is never modified).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from .checkpoint._model import Checkpointer
from .errors import ConfigError

__all__ = [
    "CheckpointerType",
    "getenv",
    "open_checkpointer",
    "read_dotenv",
    "resolve_postgres_url",
    "resolve_sqlite_url",
]

DEFAULT_SQLITE_URL = "sqlite://weavegraph.db"
DEFAULT_POSTGRES_URL = "postgresql://localhost/weavegraph"


class CheckpointerType(Enum):
    """The built-in backends; ``CheckpointerType("sqlite")`` etc. also accept their names."""

    InMemory = "memory"
    SQLite = "sqlite"
    Postgres = "postgres"

    @classmethod
    def _missing_(cls, value: object) -> CheckpointerType | None:
        name = str(value).strip().lower().replace("-", "").replace("_", "")
        aliases = {
            "memory": cls.InMemory, "inmemory": cls.InMemory, "sqlite": cls.SQLite,
            "postgres": cls.Postgres, "postgresql": cls.Postgres,
        }  # fmt: skip
        return aliases.get(name)


def read_dotenv(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """``KEY=value`` lines of a .env file (``export``, quotes and ``#`` comments understood)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if key:
            values[key] = value
    return values


def getenv(name: str) -> str | None:
    """The environment's value of ``name``, else the working directory's .env value, else None."""
    value = os.environ.get(name)
    if value:
        return value
    return read_dotenv().get(name) or None


def resolve_sqlite_url(db_url: str | None = None) -> str:
    """The SQLite URL in resolution order: the environment variable wins over ``db_url``."""
    if url := getenv("WEAVEGRAPH_SQLITE_URL"):
        return url
    if db_url:
        return db_url
    if name := getenv("SQLITE_DB_NAME"):
        return f"sqlite://{name}"
    return DEFAULT_SQLITE_URL


def resolve_postgres_url(db_url: str | None = None) -> str:
    """The PostgreSQL URL in resolution order: env, ``db_url``, DATABASE_URL, default."""
    if url := getenv("WEAVEGRAPH_POSTGRES_URL"):
        return url
    if db_url:
        return db_url
    return getenv("DATABASE_URL") or DEFAULT_POSTGRES_URL


def checkpointer_type(choice: CheckpointerType | str) -> CheckpointerType:
    """The backend ``choice`` names; a ConfigError listing the valid names otherwise."""
    try:
        return CheckpointerType(choice)
    except ValueError:
        raise ConfigError(
            f"unknown checkpointer {choice!r}",
            help='Use wg.CheckpointerType.InMemory/SQLite/Postgres, "memory", "sqlite" or "postgres".',
        ) from None


async def open_checkpointer(
    kind_or_instance: CheckpointerType | str | Checkpointer, db_url: str | None = None
) -> Checkpointer:
    """A ready checkpointer: an instance is returned as-is, a kind is opened at its resolved URL."""
    if isinstance(kind_or_instance, Checkpointer):
        return kind_or_instance
    kind = checkpointer_type(kind_or_instance)
    if kind is CheckpointerType.InMemory:
        from .checkpoint.memory import InMemoryCheckpointer

        return InMemoryCheckpointer()
    if kind is CheckpointerType.SQLite:
        from .checkpoint.sqlite import SQLiteCheckpointer

        return await SQLiteCheckpointer.connect(resolve_sqlite_url(db_url))
    from .checkpoint.postgres import PostgresCheckpointer

    return await PostgresCheckpointer.connect(resolve_postgres_url(db_url))
