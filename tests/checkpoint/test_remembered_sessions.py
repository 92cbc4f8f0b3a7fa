"""A store remembers the bookkeeping of a bounded number of sessions (``_save_plan.remember``):
a long-lived process does not keep every session it ever ran, and a session it forgot is saved
and loaded as before (its next save reads its row again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg
from weavegraph.checkpoint import _save_plan
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.testing.conformance import make_checkpoint

LIMIT = 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Any, Any]]:
    monkeypatch.setattr(_save_plan, "REMEMBERED_SESSIONS", LIMIT)
    if request.param == "sqlite":
        cp: Any = await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'r.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
        cp = await PostgresCheckpointer.connect(url, schema=schema)
    try:
        yield cp, cp._store  # pyright: ignore[reportPrivateUsage]
    finally:
        await cp.close()


def _remembered(store: Any) -> set[str]:
    names = ("rows", "heads", "bases", "_rows", "_heads", "_bases", "_extra_json")
    return {key for name in names for key in getattr(store, name, {})}


async def test_only_the_sessions_saved_last_are_remembered(store: tuple[Any, Any]) -> None:
    cp, inner = store
    sessions = [f"r{n}" for n in range(LIMIT + 3)]
    for step in (0, 1):
        for sid in sessions:
            said = [wg.Message.user(f"{sid} step {s}") for s in range(step + 1)]
            await cp.save(
                make_checkpoint(sid, step, messages=said, extra={"n": step}),
                builds_on=step - 1,
            )
            assert len(_remembered(inner)) <= LIMIT
    assert _remembered(inner) == set(sessions[-LIMIT:])
    # The forgotten ones save on (their rows read again) and load whole.
    for sid in sessions[:2]:
        said = [wg.Message.user(f"{sid} step {s}") for s in range(3)]
        later = make_checkpoint(sid, 2, messages=said, extra={"n": 2})
        await cp.save(later, builds_on=1)
        assert await cp.load_latest(sid) == later
    assert len(_remembered(inner)) <= LIMIT
