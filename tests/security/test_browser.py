"""In real Chromium: a page from another origin cannot start or answer a run (``no-cors`` posts,
a form, a CORS request), a DNS-rebound name cannot use the API, and the page itself runs under its
Content-Security-Policy without a single violation."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LAUNCH_ARGS, chromium_executable
from web_server import Server, free_port, start_server

pytestmark = pytest.mark.slow

ASKING = """
import weavegraph as wg

async def ask(snapshot, ctx):
    answer = ctx.interrupt({"question": "ship it?"})
    return wg.NodePartial(extra={"answer": answer})

builder = wg.GraphBuilder()
builder.add_node("ask", ask)
builder.add_edge(wg.START, "ask")
builder.add_edge("ask", wg.END)
app = builder.compile()
"""

# What a malicious page can send to another origin without the server's consent.
ATTACK = """<!doctype html>
<html><body>
<form id="form" method="POST" enctype="text/plain" target="sink" action="TARGET/api/runs">
  <input name='{"input": "form", "session_id": "from-form", "x": "' value='"}'>
</form>
<iframe name="sink"></iframe>
<script>
const target = "TARGET";
const run = (body) => JSON.stringify(body);
async function attack() {
  const posts = [
    {headers: {"Content-Type": "text/plain"}, body: run({input: "text", session_id: "text"})},
    {headers: {"Content-Type": "application/json"}, body: run({input: "j", session_id: "json"})},
    {body: new URLSearchParams({input: "urlencoded"})},
    {body: (() => { const f = new FormData(); f.append("input", "multipart"); return f; })()},
    {body: new Blob([run({input: "blob", session_id: "blob"})])},
    {headers: {"Content-Type": "text/plain"}, body: run({session_id: "asked", answer: "pwned"})},
  ];
  const results = [];
  for (const options of posts) {
    results.push(fetch(target + "/api/runs", {method: "POST", mode: "no-cors", ...options}));
  }
  results.push(fetch(target + "/api/runs", {
    method: "POST", mode: "cors", headers: {"Content-Type": "application/json"},
    body: run({session_id: "asked", answer: "pwned-cors"}),
  }));
  const settled = await Promise.allSettled(results);
  document.getElementById("form").submit();
  await new Promise((resolve) => document.querySelector("iframe").onload = resolve);
  document.title = "done " + settled.map((s) => s.status).join(",");
}
attack();
</script>
</body></html>
"""


@pytest.fixture
def asking_server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "asking.py").write_text(ASKING)
    # --debug: the access log shows what each request was answered.
    server = start_server("asking:app", tmp_path / "csrf.db", cwd=tmp_path, args=["--debug"])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def attacker_site(tmp_path: Path, asking_server: Server) -> Iterator[str]:
    """Another origin (another port) serving the attacking page."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "attack.html").write_text(ATTACK.replace("TARGET", asking_server.url))
    handler = partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/attack.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _wait_until_waiting(server: Server, session_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/api/sessions/{session_id}")
        if response.status_code == 200 and response.json()["interrupt"] is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"session {session_id} never waited for an answer")


def test_another_origin_cannot_start_or_answer_runs(
    asking_server: Server, attacker_site: str
) -> None:
    from playwright.sync_api import sync_playwright

    started = httpx.post(
        f"{asking_server.url}/api/runs", json={"input": "q", "session_id": "asked"}
    )
    assert started.status_code == 202
    _wait_until_waiting(asking_server, "asked")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=LAUNCH_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(attacker_site)
            page.wait_for_function("document.title.startsWith('done')", timeout=30_000)
        finally:
            browser.close()
    # Every post reached the server and was refused (the CORS one already at its preflight).
    log = asking_server.log.read_text()
    refused = [line for line in log.splitlines() if '"POST /api/runs HTTP/1.1" 4' in line]
    assert len(refused) == 7, log
    assert '"OPTIONS /api/runs HTTP/1.1" 403' in log
    assert log.count('"POST /api/runs HTTP/1.1" 202') == 1  # the session started above
    sessions = httpx.get(f"{asking_server.url}/api/sessions").json()["sessions"]
    assert [s["session_id"] for s in sessions] == ["asked"]
    asked = httpx.get(f"{asking_server.url}/api/sessions/asked").json()
    assert asked["interrupt"] is not None  # still waiting: no answer got through
    assert "answer" not in asked["state"]["extra"]
    assert "pwned" not in str(asked)


def test_a_rebound_name_cannot_use_the_api(asking_server: Server) -> None:
    from playwright.sync_api import sync_playwright

    port = asking_server.url.rsplit(":", 1)[1]
    rebound = f"http://rebound.example:{port}"
    args = [*LAUNCH_ARGS, "--host-resolver-rules=MAP rebound.example 127.0.0.1"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), args=args)
        try:
            page = browser.new_page()
            response = page.goto(rebound + "/api/sessions")
            assert response is not None
            assert response.status == 421
            # Same-origin for the browser (the attacker's name), so no CORS stands in the way.
            status = page.evaluate(
                """() => fetch("/api/runs", {method: "POST",
                    headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({input: "rebound", session_id: "rebound"})})
                  .then((r) => r.status)"""
            )
            assert status == 421
        finally:
            browser.close()
    sessions = httpx.get(f"{asking_server.url}/api/sessions").json()["sessions"]
    assert sessions == []


def test_the_page_runs_under_its_content_security_policy(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = start_server("weavegraph.demo:demo_app", tmp_path / "csp.db", cwd=tmp_path)
    violations: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_executable(), args=LAUNCH_ARGS
            )
            try:
                page = browser.new_page()
                page.on(
                    "console",
                    lambda message: (
                        violations.append(message.text)
                        if "Content Security Policy" in message.text
                        else None
                    ),
                )
                page.on("pageerror", lambda error: violations.append(str(error)))
                response = page.goto(server.url + "/")
                assert response is not None
                assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
                assert response.headers["x-frame-options"] == "DENY"
                page.wait_for_selector("#graph svg g.node[data-node='collect']")
                page.fill("#input", "Is the studio allowed to run?")
                page.click("#start")
                page.wait_for_selector("#events li.end", timeout=60_000)
                page.wait_for_selector("#timeline li[data-step='2']")
                page.click("#timeline li[data-step='2']")
                page.locator("#inspect-step", has_text="#2").wait_for()
                page.click("#new-run")
                page.locator("#sessions li").first.click()
                page.wait_for_selector("#timeline li")
                # An injected inline script is refused by the policy (and reported).
                page.evaluate(
                    """() => { const s = document.createElement("script");
                      s.textContent = "window.injected = true"; document.body.append(s); }"""
                )
                assert page.evaluate("() => window.injected === undefined")
            finally:
                browser.close()
    finally:
        server.stop()
    assert len(violations) == 1, violations
    assert "script" in violations[0]
