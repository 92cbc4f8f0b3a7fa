"""Database URL resolution in the seed's order, .env reading, checkpointer kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from weavegraph.checkpoint.memory import InMemoryCheckpointer
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.config import (
    CheckpointerType,
    open_checkpointer,
    read_dotenv,
    resolve_postgres_url,
    resolve_sqlite_url,
)
from weavegraph.errors import ConfigError

VARIABLES = ("WEAVEGRAPH_SQLITE_URL", "SQLITE_DB_NAME", "WEAVEGRAPH_POSTGRES_URL", "DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_sqlite_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_sqlite_url() == "sqlite://weavegraph.db"
    monkeypatch.setenv("SQLITE_DB_NAME", "named.db")
    assert resolve_sqlite_url() == "sqlite://named.db"
    assert resolve_sqlite_url("sqlite://code.db") == "sqlite://code.db"
    monkeypatch.setenv("WEAVEGRAPH_SQLITE_URL", "sqlite:///env.db")
    assert resolve_sqlite_url("sqlite://code.db") == "sqlite:///env.db"


def test_postgres_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_postgres_url() == "postgresql://localhost/weavegraph"
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/fallback")
    assert resolve_postgres_url() == "postgresql://db/fallback"
    assert resolve_postgres_url("postgresql://code/x") == "postgresql://code/x"
    monkeypatch.setenv("WEAVEGRAPH_POSTGRES_URL", "postgresql://env/y")
    assert resolve_postgres_url("postgresql://code/x") == "postgresql://env/y"


def test_dotenv_is_read_but_never_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "# settings\nexport SQLITE_DB_NAME='from env file.db'\n"
        'DATABASE_URL="postgresql://dotenv/db"\nBROKEN LINE\nEMPTY=\nPLAIN=v # note\n'
    )
    assert read_dotenv() == {
        "SQLITE_DB_NAME": "from env file.db",
        "DATABASE_URL": "postgresql://dotenv/db",
        "EMPTY": "",
        "PLAIN": "v",
    }
    assert resolve_sqlite_url() == "sqlite://from env file.db"
    assert resolve_postgres_url() == "postgresql://dotenv/db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://real/env")
    assert resolve_postgres_url() == "postgresql://real/env"


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("memory", CheckpointerType.InMemory),
        ("InMemory", CheckpointerType.InMemory),
        ("sqlite", CheckpointerType.SQLite),
        ("SQLite", CheckpointerType.SQLite),
        ("postgres", CheckpointerType.Postgres),
        ("postgresql", CheckpointerType.Postgres),
    ],
)
def test_checkpointer_type_names(name: str, member: CheckpointerType) -> None:
    assert CheckpointerType(name) is member


async def test_open_checkpointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = await open_checkpointer("memory")
    assert isinstance(memory, InMemoryCheckpointer)
    assert await open_checkpointer(memory) is memory
    monkeypatch.setenv("SQLITE_DB_NAME", "sub/dir/named.db")
    sqlite = await open_checkpointer(CheckpointerType.SQLite)
    assert isinstance(sqlite, SQLiteCheckpointer)
    assert sqlite.path == "sub/dir/named.db"
    await sqlite.close()
    assert (tmp_path / "sub" / "dir" / "named.db").exists()
    with pytest.raises(ConfigError, match="unknown checkpointer"):
        await open_checkpointer("mongo")
