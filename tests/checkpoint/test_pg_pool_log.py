"""The pool's log records reach weavegraph's logger, one per kind per interval (no server needed)."""

from __future__ import annotations

import logging

import pytest

from weavegraph.checkpoint.postgres import _connect as connect
from weavegraph.checkpoint.postgres._pool_log import (
    POOL_LOGGER,
    REPEAT_INTERVAL,
    PoolLogBridge,
    bridge_pool_logging,
)
from weavegraph.errors import CheckpointError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(POOL_LOGGER, logging.WARNING, __file__, 1, msg, args, None)


def test_repeats_are_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    bridge = PoolLogBridge(clock)
    caplog.set_level(logging.WARNING, logger="weavegraph.checkpoint.postgres.pool")
    for attempt in range(290):
        assert bridge.filter(_record("error connecting in %r: %s", "pool-1", attempt)) is False
        clock.now += 0.05  # 290 failures in 14.5 s
    assert bridge.filter(_record("connection failed check in %r", "pool-1")) is False
    clock.now += REPEAT_INTERVAL
    bridge.filter(_record("error connecting in %r: %s", "pool-1", "again"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "connection pool: error connecting in 'pool-1': 0",
        "connection pool: connection failed check in 'pool-1'",
        f"connection pool: error connecting in 'pool-1': again (289 more like it in the last "
        f"{REPEAT_INTERVAL:g} s)",
    ]
    assert {r.name for r in caplog.records} == {"weavegraph.checkpoint.postgres.pool"}


def test_the_bridge_is_installed_once() -> None:
    bridge_pool_logging()
    bridge_pool_logging()
    filters = logging.getLogger(POOL_LOGGER).filters
    assert sum(isinstance(f, PoolLogBridge) for f in filters) == 1


async def test_a_failed_probe_is_remembered_for_a_while() -> None:
    clock = Clock()
    # Port 1 on loopback refuses at once: nothing listens there.
    target = connect.parse_target("postgresql://postgres@127.0.0.1:1/nothing")
    liveness = connect.Liveness(target, clock)
    liveness.check()  # nothing known yet
    error = await liveness.probe(OSError("connection lost"))
    assert error is not None
    assert "127.0.0.1:1/nothing" in error.message
    assert "stopped answering" in error.message
    clock.now += connect.DOWN_GRACE / 2
    with pytest.raises(CheckpointError, match="stopped answering"):
        liveness.check()
    clock.now += connect.DOWN_GRACE
    liveness.check()  # long enough ago: the next operation tries the server again
