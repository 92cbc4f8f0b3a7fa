"""Fixtures for the security suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web_app import serve_in_process


@pytest.fixture
def app_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``with app_client(token=..., allowed_hosts=...) as client``: the app, lifespan running.

    Neither the environment nor a .env file leaks in: the settings are exactly the arguments.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_API_TOKEN", raising=False)
    monkeypatch.delenv("WEAVEGRAPH_ALLOWED_HOSTS", raising=False)
    return serve_in_process
