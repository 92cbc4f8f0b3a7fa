"""Debian's Chromium for browser tests (playwright drives it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str:
    """Debian's Chromium; without it the test skips, or fails where CI requires the browser."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    reason = "Chromium is not installed (scripts/ensure-test-services installs Debian's chromium)"
    if os.environ.get("WEAVEGRAPH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; WEAVEGRAPH_REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)
