"""The studio page in Debian's Chromium against a real ``weavegraph serve``, on SQLite and on
PostgreSQL: start and watch a run, reload mid-run, cancel it, answer a question, fork from step 2
and run the fork, edit the state, and every user-supplied string shown as text, never HTML.

Screenshots go to ``test-artifacts/`` (one set per backend).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browser import LAUNCH_ARGS, chromium_executable
from postgres_env import drop_schema, new_schema_name, postgres_test_url
from studio_graph import PAYLOAD
from web_server import WEAVEGRAPH, Server, start_server

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HELPERS = Path(__file__).resolve().parents[1] / "helpers"
LONG = 60_000


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The database the module's server runs on: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("studio") / "studio.db")
        return
    url = postgres_test_url()
    schema = new_schema_name()
    yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
    drop_schema(url, schema)


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend for the module (each test uses session ids of its own)."""
    db: Path | str = Path(backend) if not backend.startswith("postgres") else backend
    folder = tmp_path_factory.mktemp("studio-server")
    started = start_server("studio_graph:app", db, cwd=folder, env={"PYTHONPATH": str(HELPERS)})
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, launched once for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable(), args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh page on the studio (no script error, no policy violation allowed)."""
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#graph svg g.node[data-node='write']")
        yield page
        assert errors == []
    finally:
        context.close()


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


def test_the_page_works_with_an_api_token(browser: Any, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(HELPERS), "WEAVEGRAPH_API_TOKEN": "s3cret"}
    server = start_server("studio_graph:app", tmp_path / "token.db", cwd=tmp_path, env=env)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        # Without the token the API refuses, and the page says why.
        page.locator("#sessions-error", has_text="API token").wait_for()
        page.click(".settings summary")
        page.fill("#token", "s3cret")
        page.press("#token", "Enter")
        page.locator("#sessions-error").wait_for(state="hidden")
        page.click(".settings summary")
        start(page, "straight with a token", "tokened")
        # The events stream carries the token in a header, never in the URL.
        wait_status(page, "completed")
        page.locator("#events li.end", has_text="completed").wait_for()
    finally:
        context.close()
        server.stop()
    log = server.log.read_text()
    assert "s3cret" not in log
    assert '"GET /api/runs/tokened/events?last_event_id=-1 HTTP/1.1" 200' in log


def test_a_session_paused_by_the_command_line_continues_from_the_page(
    page: Any, server: Server, backend: str, tmp_path: Path
) -> None:
    db = backend if backend.startswith("postgres") else f"sqlite://{backend}"
    ran = subprocess.run(
        [WEAVEGRAPH, "run", "studio_graph:app", "--input", "straight on", "--session", "paused",
         "--interrupt-before", "finish", "--events", "none", "--db", db],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(HELPERS)}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    page.goto(f"{server.url}/?session=paused")
    wait_status(page, "waiting for an answer")
    assert page.locator("#ask").is_hidden()  # a static pause asks nothing
    page.locator("#continue-run", has_text="Continue past the pause").click()
    wait_status(page, "completed")
    assert "finish" in page.locator("#timeline li").last.inner_text()
