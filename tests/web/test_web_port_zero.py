"""``weavegraph serve --port 0`` prints the port it actually listens on."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

WEAVEGRAPH = str(Path(sys.executable).with_name("weavegraph"))


def test_port_zero_shows_the_chosen_port(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [WEAVEGRAPH, "serve", "weavegraph.demo:demo_app", "--port", "0"],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and not healthy and process.poll() is None:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text())
            if found:
                assert found.group(1) != "0"
                with contextlib.suppress(httpx.TransportError):
                    healthy = httpx.get(f"{found.group(0)}/healthz").status_code == 200
            time.sleep(0.05)
        assert healthy, log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=60)
