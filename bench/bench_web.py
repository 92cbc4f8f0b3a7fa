"""Time from ``POST /api/runs`` to the first SSE event, against a real ``weavegraph serve``.

Starts the server as a subprocess on a free loopback port (SQLite in a temporary folder, the bundled
demo graph), then for each run: POST, open the event stream, wait for the first ``data:`` line.

    .venv/bin/python bench/bench_web.py [--runs 30]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

WEAVEGRAPH = str(Path(sys.executable).with_name("weavegraph"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited before answering /healthz")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the server did not answer /healthz within 60 s")


def _first_event_ms(client: httpx.Client, url: str, question: str) -> float:
    started = time.perf_counter()
    response = client.post(f"{url}/api/runs", json={"input": question})
    response.raise_for_status()
    session_id = response.json()["session_id"]
    with client.stream("GET", f"{url}/api/runs/{session_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return (time.perf_counter() - started) * 1000
    raise SystemExit(f"the stream of {session_id} ended without an event")


def main(runs: int) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        command = [WEAVEGRAPH, "serve", "weavegraph.demo:demo_app", "--port", str(port)]
        command += ["--db", f"sqlite://{folder}/web.db"]
        process = subprocess.Popen(command, cwd=folder, stderr=subprocess.DEVNULL)
        try:
            _wait_healthy(url, process)
            with httpx.Client(timeout=30) as client:
                _first_event_ms(client, url, "warm-up")
                timings = [_first_event_ms(client, url, f"question {n}") for n in range(runs)]
        finally:
            process.terminate()
            process.wait(timeout=60)
    timings.sort()
    p90 = timings[min(len(timings) - 1, int(len(timings) * 0.9))]
    print(
        f"POST /api/runs -> first SSE event over {runs} runs: median "
        f"{statistics.median(timings):.1f} ms, p90 {p90:.1f} ms, "
        f"min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Time POST /api/runs to the first SSE event.")
    parser.add_argument("--runs", type=int, default=30)
    main(parser.parse_args().runs)
