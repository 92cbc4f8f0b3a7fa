"""The studio page in Debian's Chromium against a real ``weavegraph serve``, on SQLite and on
PostgreSQL: start and watch a run, reload mid-run, cancel it, answer a question, fork from step 2
and run the fork, edit the state, and every user-supplied string shown as text, never HTML.

Screenshots go to ``test-artifacts/`` (one set per backend).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browser import LAUNCH_ARGS, chromium_executable
from studio_graph import PAYLOAD
from web_server import Server, start_server

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HELPERS = Path(__file__).resolve().parents[1] / "helpers"
LONG = 60_000


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database the server runs on: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "studio.db")
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[Server]:
    db: Path | str = Path(backend) if not backend.startswith("postgres") else backend
    started = start_server("studio_graph:app", db, cwd=tmp_path, env={"PYTHONPATH": str(HELPERS)})
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def page(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=LAUNCH_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(server.url + "/")
            page.wait_for_selector("#graph svg g.node[data-node='write']")
            yield page
            assert errors == []
        finally:
            browser.close()


def shoot(page: Any, name: str, backend: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    kind = "postgres" if backend.startswith("postgres") else "sqlite"
    page.screenshot(path=str(ARTIFACTS / f"studio-{name}-{kind}.png"), full_page=True)


def start(page: Any, text: str, session_id: str) -> None:
    page.click("#new-run")
    page.fill("#input", text)
    page.fill("#session-id", session_id)
    page.click("#start")
    page.wait_for_url(re.compile(r"\?session=" + re.escape(session_id) + "$"))


def wait_status(page: Any, label: str) -> None:
    try:
        page.locator("#session-status", has_text=re.compile("^" + label + "$")).wait_for(
            timeout=LONG
        )
    except Exception:  # what the page showed instead, for whoever reads the failure
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "studio-failure.png"), full_page=True)
        raise


def shown_seqs(page: Any) -> list[str]:
    return page.locator("#events li").evaluate_all("rows => rows.map(r => r.dataset.seq)")


def nothing_ran_as_html(page: Any) -> None:
    """No payload became an element, none of its scripts ran."""
    assert page.locator("main img, aside.side img, main script").count() == 0
    assert page.evaluate("() => window.pwned === undefined")


def test_watch_reload_and_cancel_a_long_run(page: Any, server: Server, backend: str) -> None:
    start(page, f"slow run {PAYLOAD}", "long-run")
    wait_status(page, "running")
    # Live: the model's chunks fold into one growing message per stream.
    page.locator("#events li.llm").first.wait_for()
    page.locator("#timeline li[data-step='3']").wait_for(timeout=LONG)
    assert page.locator("#graph g.node.active").count() == 1
    before = shown_seqs(page)
    assert len(before) == len(set(before))
    llm_rows = page.locator("#events li.llm")
    assert llm_rows.count() < page.locator("#events li").count()
    assert "Supersteps keep" in llm_rows.first.inner_text()
    shoot(page, "running", backend)

    page.reload()  # the URL names the session: the same view comes back, replayed from the log
    wait_status(page, "running")
    page.locator(f"#events li[data-seq='{before[-1]}']").wait_for(state="attached", timeout=LONG)
    after = shown_seqs(page)
    assert set(before) <= set(after)
    assert len(after) == len(set(after))
    # The user's input and the node's output are shown as text.
    assert PAYLOAD in page.locator("#events li[data-type='node']").first.inner_text()
    nothing_ran_as_html(page)

    page.click("#cancel-run")
    wait_status(page, "cancelled")
    page.locator("#events li.end", has_text="cancelled").wait_for(timeout=LONG)
    page.locator("#sessions li[data-status='cancelled']").wait_for(timeout=LONG)
    assert page.locator("#continue-run").is_visible()
    shoot(page, "cancelled", backend)
    detail = httpx.get(f"{server.url}/api/sessions/long-run").json()
    assert detail["status"] == "cancelled"


def test_answer_fork_from_step_2_and_edit(page: Any, server: Server, backend: str) -> None:
    start(page, "ask me first", "asked")
    wait_status(page, "waiting for an answer")
    question = page.locator("#ask-question")
    assert PAYLOAD in question.inner_text()
    nothing_ran_as_html(page)
    shoot(page, "waiting", backend)
    page.fill("#answer", '{"ok": true}')
    page.click("#send-answer")
    wait_status(page, "completed")
    assert page.locator("#ask").is_hidden()
    assert httpx.get(f"{server.url}/api/sessions/asked").json()["state"]["extra"]["answer"] == {
        "ok": True
    }

    # The state at step 2 and what step 2 changed.
    page.click("#timeline li[data-step='2']")
    page.wait_for_url(re.compile(r"step=2"))
    page.locator("#inspect-step", has_text="#2").wait_for()
    page.locator("#changes li[data-path='extra.draft']").wait_for()
    shoot(page, "step-2", backend)
    page.click("#tab-state")
    assert PAYLOAD in page.locator("#state").inner_text()
    nothing_ran_as_html(page)

    page.click("#fork-step")
    page.fill("#fork-id", "asked-fork")
    page.click("#fork-save")
    page.wait_for_url(re.compile(r"\?session=asked-fork$"))
    wait_status(page, "stopped")
    assert page.locator("#timeline li").last.get_attribute("data-step") == "2"
    page.click("#continue-run")  # the fork runs from step 2: it asks again
    wait_status(page, "waiting for an answer")
    page.fill("#answer", "no, not yet")
    page.click("#send-answer")
    wait_status(page, "completed")
    fork = httpx.get(f"{server.url}/api/sessions/asked-fork").json()
    assert fork["state"]["extra"]["answer"] == "no, not yet"

    page.click("#edit-state")
    page.fill("#edit-json", '{"extra": {"note": "<b>edited</b> <script>window.pwned=3</script>"}}')
    page.click("#edit-save")
    page.locator("#changes li[data-path='extra.note']").wait_for(timeout=LONG)
    assert "<script>window.pwned=3</script>" in page.locator("#changes").inner_text()
    assert page.locator("#timeline li").last.inner_text().count("state edit") == 1
    nothing_ran_as_html(page)
    shoot(page, "edited", backend)
    edited = httpx.get(f"{server.url}/api/sessions/asked-fork").json()
    assert edited["state"]["extra"]["note"].startswith("<b>edited</b>")
    sessions = [s["session_id"] for s in httpx.get(f"{server.url}/api/sessions").json()["sessions"]]
    assert sessions[0] == "asked-fork"  # newest first


def test_a_hostile_session_id_in_the_url_is_text(page: Any, server: Server, backend: str) -> None:
    hostile = '<img src=x onerror="window.pwned=4">'
    page.goto(f"{server.url}/?session={quote(hostile)}")
    page.locator("#action-error", has_text="invalid session id").wait_for()
    assert page.locator("#session-title").inner_text() == hostile
    nothing_ran_as_html(page)
    start(page, f"straight {PAYLOAD}", "straight")
    wait_status(page, "completed")
    page.click("#tab-state")
    assert f"straight {PAYLOAD}" in page.locator("#state").inner_text()
    nothing_ran_as_html(page)
    shoot(page, "completed", backend)
