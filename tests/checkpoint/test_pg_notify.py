"""Announcements of changed sessions: the first at once, then at most one per NOTIFY_EVERY."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from weavegraph.checkpoint.postgres._connect import parse_target
from weavegraph.checkpoint.postgres._notify import NOTIFY_EVERY, Notifier, session_channel

pytestmark = pytest.mark.postgres


async def test_changes_arriving_together_share_one_announcement(
    postgres_url: str, postgres_schema: str
) -> None:
    target = parse_target(postgres_url, postgres_schema)
    notifier = Notifier(target.conninfo, target.kwargs(), target.schema)
    loop = asyncio.get_running_loop()
    announced: asyncio.Queue[tuple[float, list[str]]] = asyncio.Queue()

    async def publisher(channel: str, session_ids: Sequence[str]) -> None:
        assert channel == session_channel(postgres_schema)
        announced.put_nowait((loop.time(), list(session_ids)))

    notifier.publishers.append(publisher)
    try:
        notifier.session_changed("first")
        heard = [await asyncio.wait_for(announced.get(), 5)]
        for index in range(20):  # a burst: announced together, once the interval has passed
            notifier.session_changed(f"s{index:02}")
            await asyncio.sleep(0)
        heard.append(await asyncio.wait_for(announced.get(), 5))
        await asyncio.sleep(2 * NOTIFY_EVERY)
        assert announced.empty()
    finally:
        await notifier.close()
    assert heard[0][1] == ["first"]
    assert [ids for _, ids in heard[1:]] == [[f"s{index:02}" for index in range(20)]]
    assert heard[1][0] - heard[0][0] >= NOTIFY_EVERY * 0.99  # (the loop clock's resolution)
