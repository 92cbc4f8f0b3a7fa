"""Group commit: concurrent saves share transactions, and one bad save fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.postgres._group_commit import MAX_BATCH, GroupCommit
from weavegraph.errors import CheckpointError
from weavegraph.testing.conformance import make_checkpoint


class Committer:
    """Commits lists of ints; an odd number breaks any batch it is in."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()

    async def __call__(self, items: Sequence[int]) -> None:
        await self.gate.wait()
        if any(item % 2 for item in items):
            raise ValueError(f"odd in {list(items)}")
        self.batches.append(list(items))


async def test_saves_waiting_together_share_one_batch() -> None:
    committer = Committer()
    group = GroupCommit[int](committer, max_batches=1)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)  # the first batch starts with item 0 alone and waits at the gate
    rest = [asyncio.create_task(group.submit(i)) for i in range(2, 2 * MAX_BATCH + 10, 2)]
    await asyncio.sleep(0)
    committer.gate.set()
    await asyncio.gather(first, *rest)
    assert committer.batches[0] == [0]
    assert [len(batch) for batch in committer.batches[1:]] == [MAX_BATCH, 4]
    await group.aclose()


async def test_a_bad_item_fails_alone_and_the_others_commit() -> None:
    committer = Committer()
    group = GroupCommit[int](committer, max_batches=1)
    blocker = asyncio.create_task(group.submit(100))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(group.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    committer.gate.set()
    results = await asyncio.gather(blocker, *tasks, return_exceptions=True)
    assert results[0] is None
    assert results[1] is None
    assert isinstance(results[2], ValueError)
    assert str(results[2]) == "odd in [3]"
    assert results[3] is None
    assert sorted(i for batch in committer.batches for i in batch) == [2, 4, 100]


async def test_an_item_the_commit_refuses_fails_alone_without_a_retry() -> None:
    calls: list[list[int]] = []

    async def commit(items: Sequence[int]) -> list[Exception | None]:
        calls.append(list(items))
        return [ValueError(f"refused {i}") if i == 3 else None for i in items]

    group = GroupCommit[int](commit, max_batches=1)
    results = await asyncio.gather(*(group.submit(i) for i in (2, 3, 4)), return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "refused 3"
    assert results[2] is None
    assert calls == [[2, 3, 4]]  # one transaction: the others committed with it


async def test_a_save_cancelled_before_its_batch_is_not_committed() -> None:
    committer = Committer()
    group = GroupCommit[int](committer, max_batches=1)
    blocker = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(group.submit(2))
    kept = asyncio.create_task(group.submit(4))
    await asyncio.sleep(0)
    cancelled.cancel()
    committer.gate.set()
    await asyncio.gather(blocker, kept)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert committer.batches == [[0], [4]]


@pytest.mark.postgres
async def test_one_unstorable_checkpoint_among_concurrent_saves_fails_alone(
    postgres_url: str, postgres_schema: str
) -> None:
    checkpointer = await PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        good = [make_checkpoint(f"ok{i}", 0, extra={"i": i}) for i in range(12)]
        bad = make_checkpoint("bad", 0, frontier=("a\x00b",))  # JSONB refuses U+0000
        results = await asyncio.gather(
            *(checkpointer.save(cp) for cp in [*good[:6], bad, *good[6:]]),
            return_exceptions=True,
        )
        errors = [r for r in results if r is not None]
        assert len(errors) == 1
        assert isinstance(errors[0], CheckpointError)
        for i, cp in enumerate(good):
            loaded = await checkpointer.load_latest(cp.session_id)
            assert loaded is not None
            assert loaded.state.extra == {"i": i}
        assert await checkpointer.load_latest("bad") is None
    finally:
        await checkpointer.close()
