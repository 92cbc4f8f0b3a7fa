"""Every checkpointer backend passes every conformance check."""

from __future__ import annotations

import pytest

from weavegraph.checkpoint.base import Checkpointer
from weavegraph.testing.conformance import CHECKS, Capabilities, Check


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
async def test_conformance(check: Check, backend: tuple[Checkpointer, Capabilities]) -> None:
    checkpointer, capabilities = backend
    await check(checkpointer, capabilities)
