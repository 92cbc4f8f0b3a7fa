"""The studio's HTTP API against a real ``weavegraph serve``: session status, steps, actions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_the_favicon_is_served(demo_server: Any) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = httpx.get(demo_server.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text.startswith("<svg")
