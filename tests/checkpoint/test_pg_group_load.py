"""Loads of sessions opening together share their statements, and each gets its own session."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from psycopg import sql

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.errors import CheckpointError
from weavegraph.state import ErrorEvent, Message
from weavegraph.testing._checks import assert_same
from weavegraph.testing.conformance import make_checkpoint

pytestmark = pytest.mark.postgres


def _checkpoint(i: int) -> Any:
    return make_checkpoint(
        f"s{i}",
        i % 3,
        messages=[Message(role="user", content=f"m{i}.{k}") for k in range(i % 4)],
        errors=[ErrorEvent(message=f"e{i}")] if i % 2 else [],
        extra={"i": i},
    )


async def test_sessions_loaded_at_once_share_one_batch_and_each_gets_its_own(
    cp: PostgresCheckpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = [_checkpoint(i) for i in range(20)]
    for checkpoint in saved:
        await cp.save(checkpoint)
    batches: list[list[str]] = []
    load_heads = cp._store.load_heads  # pyright: ignore[reportPrivateUsage]

    async def recorded(conn: Any, sids: Sequence[str]) -> Any:
        batches.append(list(sids))
        return await load_heads(conn, sids)

    monkeypatch.setattr(cp._store, "load_heads", recorded)  # pyright: ignore[reportPrivateUsage]
    wanted = [f"s{i}" for i in range(20)] + ["missing-1", "missing-2"]
    loaded = await asyncio.gather(*(cp.load_latest(sid) for sid in wanted))
    for checkpoint, found in zip(saved, loaded, strict=False):
        assert_same(found, checkpoint)
    assert loaded[-2:] == [None, None]
    assert len(batches) < len(wanted)  # loads waiting together went in one statement
    assert sorted(sid for batch in batches for sid in batch) == sorted(wanted)


async def test_a_session_whose_log_is_incomplete_fails_alone(
    cp: PostgresCheckpointer, postgres_url: str
) -> None:
    saved = [_checkpoint(i) for i in range(1, 8, 2)]  # each with messages or an error
    for checkpoint in saved:
        await cp.save(checkpoint)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {}.channel_log WHERE session_id = %s AND channel = %s").format(
                sql.Identifier(cp.schema)
            ),
            ("s3", "errors"),
        )
    results = await asyncio.gather(
        *(cp.load_latest(c.session_id) for c in saved), return_exceptions=True
    )
    broken = results[1]
    assert isinstance(broken, CheckpointError)
    assert "the errors log of 's3' is incomplete" in str(broken)
    for checkpoint, found in zip(saved, results, strict=True):
        if checkpoint.session_id != "s3":
            assert_same(found, checkpoint)  # pyright: ignore[reportArgumentType]
