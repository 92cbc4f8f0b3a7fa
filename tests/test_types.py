"""Node ids, the virtual endpoints and the node protocol (SPEC §2.1)."""

from __future__ import annotations

import pytest

import weavegraph as wg


def test_the_virtual_endpoints_are_plain_strings() -> None:
    assert (wg.START, wg.END) == ("Start", "End")
    assert (wg.NodeKind.START, wg.NodeKind.END) == (wg.START, wg.END)


def test_custom_ids_are_the_bare_name() -> None:
    assert wg.NodeKind.custom("fetch") == "fetch"
    with pytest.raises(ValueError, match="non-empty"):
        wg.NodeKind.custom("")
    with pytest.raises(ValueError, match="non-empty"):
        wg.NodeKind.custom(3)  # pyright: ignore[reportArgumentType]


def test_objects_with_a_run_method_are_nodes() -> None:
    class SyncNode:
        def run(self, snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
            return None

    class AsyncNode:
        async def run(self, snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
            return None

    class NotANode:
        def go(self) -> None: ...

    assert isinstance(SyncNode(), wg.Node)
    assert isinstance(AsyncNode(), wg.Node)
    assert not isinstance(NotANode(), wg.Node)
