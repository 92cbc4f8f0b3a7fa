"""One parametrized ``checkpointer`` fixture: every backend runs the same conformance checks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from weavegraph.checkpoint._model import Checkpointer
from weavegraph.checkpoint.memory import InMemoryCheckpointer
from weavegraph.testing.conformance import Capabilities

BACKENDS = ["memory"]


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Checkpointer, Capabilities]]:
    """A fresh checkpointer of each backend, with the capabilities it promises."""
    name: str = request.param
    if name == "memory":
        checkpointer = InMemoryCheckpointer()
        yield checkpointer, Capabilities(keeps_history=False)
        await checkpointer.close()
