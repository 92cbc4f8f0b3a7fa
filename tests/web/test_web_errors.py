"""How the web API answers the library's errors: the status says whose fault it is."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

import weavegraph as wg
from weavegraph.errors import LeaseLost, SessionNotFound
from weavegraph.web.app import (
    _weavegraph_error,  # pyright: ignore[reportPrivateUsage]
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SessionNotFound("s"), 404),
        (wg.CheckpointConflict("s", 3, 4), 409),
        (LeaseLost("s", "epoch 2 was fenced out"), 409),
        (wg.CheckpointError("PostgreSQL at db:5432/app: the server does not answer"), 503),
        (wg.StateError("not JSON"), 400),
    ],
    ids=["missing", "conflict", "lease-lost", "storage-down", "bad-state"],
)
async def test_each_error_gets_the_status_of_whose_fault_it_is(
    error: wg.WeavegraphError, status: int
) -> None:
    request = Request({"type": "http", "method": "POST", "path": "/api/runs", "headers": []})
    response = await _weavegraph_error(request, error)
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert body["code"] == error.code
