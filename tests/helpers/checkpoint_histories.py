"""Checkpoint histories and checks that the SQLite and Postgres tests share (test-only helpers)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.postgres import PostgresCheckpointer
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.state import Message
from weavegraph.testing.conformance import make_checkpoint

Saved = dict[tuple[str, int], Checkpoint]
StepStore = SQLiteCheckpointer | PostgresCheckpointer


def evolving(sid: str, steps: int, *, start: datetime | None = None) -> list[Checkpoint]:
    """Checkpoints as a runner makes them: one message per step, extra keys changing, a minute
    apart from ``start`` (default: an hour ago)."""
    saved: list[Checkpoint] = []
    messages: tuple[Message, ...] = ()
    extra: dict[str, object] = {"fixed": "x" * 50}
    for step in range(steps):
        messages = (*messages, Message.assistant(f"{sid} step {step}"))
        extra = {**extra, f"k{step % 3}": step}
        checkpoint = make_checkpoint(sid, step, messages=messages, extra=extra)
        moment = (start or datetime.now(UTC) - timedelta(hours=1)) + timedelta(minutes=step)
        checkpoint = replace(checkpoint, created_at=moment)
        messages = checkpoint.state.messages
        saved.append(checkpoint)
    return saved


async def load_all(cp: StepStore, sessions: Sequence[str]) -> Saved:
    """Every step history lists, loaded; a listed step that cannot be loaded fails the test."""
    loaded: Saved = {}
    for sid in sessions:
        for info in await cp.history(sid):
            found = await cp.load(sid, info.step)
            assert found is not None, f"{sid} step {info.step} is listed but cannot be loaded"
            loaded[(sid, info.step)] = found
    return loaded


async def check_survivors(
    cp: StepStore,
    before: Saved,
    doomed: Sequence[tuple[str, int]],
    sessions: Sequence[str],
    chooser: random.Random,
) -> None:
    """After ``doomed`` step rows were deleted by hand: the rest load as before, and stay loadable
    through a further save, a prune and a vacuum."""
    after = await load_all(cp, sessions)
    assert set(after) == set(before) - set(doomed)
    for key, checkpoint in after.items():
        assert checkpoint == before[key], key
    sid = chooser.choice(list(sessions))
    latest = await cp.load_latest(sid)
    assert latest is not None
    await cp.save(replace(latest, step=latest.step + 1))
    await cp.prune(keep_last=chooser.randint(1, 10))
    await cp.vacuum()
    for info in await cp.history(sid):
        found = await cp.load(sid, info.step)
        assert found is not None
        if (sid, info.step) in before:
            assert found == before[(sid, info.step)]
