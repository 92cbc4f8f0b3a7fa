"""The HTML page in headless Chromium: a click starts a run and its events appear live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser import LAUNCH_ARGS, chromium_executable

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


SLOW_DEMO = """
from weavegraph.demo import demo_app

app = demo_app(token_delay=0.02)
"""


def test_page_shows_live_events_after_a_click(server_factory: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    (tmp_path / "slow_demo.py").write_text(SLOW_DEMO)
    server = server_factory("slow_demo:app", tmp_path / "page.db", cwd=tmp_path)
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/")
            # The graph is drawn from /api/graph before anything runs.
            page.wait_for_selector("#graph svg g.node[data-node='collect']")
            page.fill("#input", "What does the browser see?")
            page.click("#start")
            # Live: events arrive while the run is still going (the status says running).
            page.wait_for_selector("#events li[data-type='llm']")
            assert page.locator("#status").inner_text().startswith(("running", "completed"))
            page.wait_for_selector("#events li .end", timeout=60_000)
            assert page.locator("#status").inner_text().startswith("completed")
            seqs = [
                int(s)
                for s in page.locator("#events li").evaluate_all(
                    "items => items.map(i => i.dataset.seq)"
                )
            ]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert "Supersteps" in page.locator("#llm").inner_text()
            page.wait_for_selector("#sessions li")
            page.locator("#sessions li").first.click()
            # Selectors, not wait_for_function: the page's policy forbids evaluating strings.
            page.locator("#session-detail", has_text="history").wait_for()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
        finally:
            browser.close()


ASKING = """
import weavegraph as wg

async def ask(snapshot, ctx):
    answer = ctx.interrupt({"question": "ship it?"})
    ctx.emit("ask", f"got {answer}")
    return wg.NodePartial(extra={"answer": answer})

builder = wg.GraphBuilder()
builder.add_node("ask", ask)
builder.add_edge(wg.START, "ask")
builder.add_edge("ask", wg.END)
app = builder.compile()
"""


def test_page_answers_a_waiting_session(server_factory: Any, tmp_path: Path) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    (tmp_path / "asking.py").write_text(ASKING)
    server = server_factory("asking:app", tmp_path / "ask.db", cwd=tmp_path)
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.fill("#session-id", "asked")
            page.click("#start")
            page.wait_for_selector("#ask:not([hidden])")
            assert "ship it?" in page.locator("#ask-question").inner_text()
            page.fill("#answer", '{"ok": true}')
            page.click("#send-answer")
            page.wait_for_selector("#events li .end", timeout=60_000)
            page.locator("#status", has_text=re.compile(r"^completed")).wait_for()
            assert page.locator("#ask").is_hidden()
        finally:
            browser.close()
    state = httpx.get(f"{server.url}/api/sessions/asked").json()["state"]
    assert state["extra"]["answer"] == {"ok": True}
