"""The bundled demo in the studio page (headless Chromium): a click starts a run, its events
arrive live, and each model stream is one growing message, not one row per token."""

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


def test_the_demo_streams_into_one_message_per_model_stream(
    server_factory: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    (tmp_path / "slow_demo.py").write_text(SLOW_DEMO)
    server = server_factory("slow_demo:app", tmp_path / "page.db", cwd=tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=LAUNCH_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.goto(server.url + "/")
            # The graph is drawn from /api/graph before anything runs; the input box is empty
            # (no graph's example question is imposed on another graph).
            page.wait_for_selector("#graph svg g.node[data-node='collect']")
            assert page.locator("#input").input_value() == ""
            page.fill("#input", "What does the browser see?")
            page.click("#start")
            page.wait_for_url(re.compile(r"\?session=run-"))
            # Live: the model's tokens grow one message while the run goes on.
            page.wait_for_selector("#events li.llm.streaming")
            page.locator("#session-status", has_text="running").wait_for()
            page.wait_for_selector("#events li.end", timeout=60_000)
            page.locator("#session-status", has_text="completed").wait_for()
            # The demo drafts four times: four model messages, not one row per token.
            assert page.locator("#events li.llm").count() == 4
            assert "Supersteps" in page.locator("#events li.llm").last.inner_text()
            seqs = [
                int(s)
                for s in page.locator("#events li:not(.lifecycle)").evaluate_all(
                    "items => items.map(i => i.dataset.seq)"
                )
            ]
            assert seqs == sorted(set(seqs))
            page.locator("#timeline li[data-step='12']").wait_for()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
        finally:
            browser.close()
