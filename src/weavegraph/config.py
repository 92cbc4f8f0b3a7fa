"""Configuration: which checkpointer, which database URL (the documented order, exactly).

:func:`open_checkpointer` is the one place that maps a choice or a URL to a backend; the CLI, the
runner, the web server and :func:`migrate` all go through it.

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

from .checkpoint.base import Checkpointer, Maintainable, MigrationResult
from .errors import ConfigError

__all__ = [
    "CheckpointerType",
    "checkpointer_type",
    "getenv",
    "migrate",
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


_POSTGRES_SCHEMES = ("postgres://", "postgresql://")


def _url_kind(db_url: str | None) -> CheckpointerType | None:
    """The backend a URL's scheme names (None: no URL, or a plain path or key=value string)."""
    if not db_url:
        return None
    if db_url.startswith(_POSTGRES_SCHEMES):
        return CheckpointerType.Postgres
    if db_url.startswith("sqlite:"):
        return CheckpointerType.SQLite
    return None


def checkpointer_type(
    choice: CheckpointerType | str | None, db_url: str | None = None
) -> CheckpointerType:
    """The backend ``choice`` names, else the one ``db_url``'s scheme names, else SQLite.

    A ConfigError lists the valid names for an unknown choice, and refuses a SQL backend given a
    URL of the other one (the in-memory backend ignores ``db_url``).
    """
    from_url = _url_kind(db_url)
    if choice is None:
        return from_url or CheckpointerType.SQLite
    try:
        kind = CheckpointerType(choice)
    except ValueError:
        raise ConfigError(
            f"unknown checkpointer {choice!r}",
            help='Use wg.CheckpointerType.InMemory/SQLite/Postgres, "memory", "sqlite" or "postgres".',
        ) from None
    if from_url is not None and kind is not CheckpointerType.InMemory and from_url is not kind:
        raise ConfigError(
            f"the {kind.value} checkpointer cannot use the database URL {db_url}",
            help="Give a URL of that backend (sqlite://file.db, postgresql://host/db), or "
            "leave the checkpointer unset so that the URL chooses it.",
        )
    return kind


async def open_checkpointer(
    kind_or_instance: CheckpointerType | str | Checkpointer | None, db_url: str | None = None
) -> Checkpointer:
    """A ready checkpointer: an instance is returned as-is, a kind (None: the one ``db_url``
    names, else SQLite) is opened at its resolved URL."""
    if isinstance(kind_or_instance, Checkpointer):
        return kind_or_instance
    kind = checkpointer_type(kind_or_instance, db_url)
    if kind is CheckpointerType.InMemory:
        from .checkpoint.memory import InMemoryCheckpointer

        return InMemoryCheckpointer()
    if kind is CheckpointerType.SQLite:
        from .checkpoint.sqlite import SQLiteCheckpointer

        return await SQLiteCheckpointer.connect(resolve_sqlite_url(db_url))
    from .checkpoint.postgres import PostgresCheckpointer

    return await PostgresCheckpointer.connect(resolve_postgres_url(db_url))


async def migrate(db_url: str | None = None) -> MigrationResult:
    """Bring the database ``db_url`` names (resolved as everywhere) to the latest schema.

    Refuses a foreign, corrupt or newer database without changing it. ``weavegraph db migrate``
    does the same; connecting a checkpointer migrates implicitly.
    """
    checkpointer = await open_checkpointer(None, db_url)
    try:
        if not isinstance(checkpointer, Maintainable):  # narrows the type (SQL backends are)
            raise ConfigError(f"{type(checkpointer).__name__} has no schema to migrate")
        after = await checkpointer.schema_version()
        return MigrationResult(
            location=checkpointer.location, before=checkpointer.schema_before, after=after
        )
    finally:
        await checkpointer.close()
