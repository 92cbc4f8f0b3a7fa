"""The command line in-process through ``main(argv)``: help, usage errors, graph output."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from weavegraph.cli import main
from weavegraph.cli._parser import parse_age

COMMANDS = [
    [],
    ["demo"],
    ["run"],
    ["resume"],
    ["graph"],
    ["serve"],
    ["sessions"],
    ["sessions", "list"],
    ["sessions", "show"],
    ["sessions", "history"],
    ["sessions", "delete"],
    ["sessions", "fork"],
    ["sessions", "edit"],
    ["db"],
    ["db", "stats"],
    ["db", "prune"],
    ["db", "vacuum"],
    ["db", "migrate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "weavegraph")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: weavegraph")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["run"],
        ["run", "weavegraph.demo:demo_app", "--events", "loud"],
        ["run", "weavegraph.demo:demo_app", "--input", "x", "--state", "f.json"],
        ["graph", "weavegraph.demo:demo_app", "--format", "png"],
        ["db", "prune", "--keep-last", "many"],
        ["db", "prune", "--older-than", "a while"],
        ["sessions", "show"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_bad_target_is_a_usage_error_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "weavegraph.demo:nothing_here"]) == 2
    err = capsys.readouterr().err
    assert "weavegraph::config::invalid" in err
    assert "has no attribute 'nothing_here'" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "weavegraph.demo:nothing_here", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_graph_prints_mermaid_and_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "weavegraph.demo:demo_app"]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("flowchart")
    assert '"collect"' in mermaid
    assert main(["graph", "weavegraph.demo:build_demo", "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.lstrip().startswith("digraph")
    assert "collect" in dot


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 5400), ("3600s", 3600), ("2w", 14 * 86400)],
)
def test_parse_age(text: str, seconds: int) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["30", "d", "-3d", "3 years", "1.5d"])
def test_parse_age_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--older-than"):
        parse_age(text)


def test_state_panel_shows_user_text_literally() -> None:
    import io

    from rich.console import Console

    import weavegraph as wg
    from weavegraph.cli._output import state_panel

    state = wg.VersionedState.builder().with_user_message("[bold]not markup[/]").build()
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None).print(state_panel(state))
    text = buffer.getvalue()
    assert "[user]" in text
    assert "[bold]not markup[/]" in text


READ_ONLY = [
    ["sessions", "list"],
    ["sessions", "show", "s1"],
    ["sessions", "history", "s1"],
    ["sessions", "delete", "s1"],
    ["db", "stats"],
    ["db", "prune", "--keep-last", "5"],
    ["db", "vacuum"],
    ["resume", "s1", "weavegraph.demo:demo_app"],
]


@pytest.mark.parametrize("argv", READ_ONLY, ids=" ".join)
def test_reading_a_missing_database_creates_no_file(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    monkeypatch.delenv("SQLITE_DB_NAME", raising=False)
    assert main([*argv, "--db", "sqlite://typo/runs.db"]) == 1
    assert "no weavegraph database at typo/runs.db" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_db_migrate_creates_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    assert main(["db", "migrate", "--db", "sqlite://new.db"]) == 0
    assert (tmp_path / "new.db").exists()
    assert main(["sessions", "list", "--db", "sqlite://new.db"]) == 0
    assert "0 session(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "show", "bad id!"],
        ["sessions", "delete", "../x"],
        ["resume", "bad id!", "weavegraph.demo:demo_app"],
        ["run", "weavegraph.demo:demo_app", "--session", "bad id!", "--input", "x"],
        ["demo", "--session", "bad id!"],
    ],
    ids=" ".join,
)
def test_an_invalid_session_id_is_a_usage_error(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "invalid session id" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "weavegraph.demo:demo_app", "--port", "99999"]) == 2
    assert "invalid port value" in capsys.readouterr().err


@pytest.mark.parametrize("storage", [["--db", "sqlite://q.db"], ["--checkpointer", "memory"]])
def test_serve_queue_needs_postgres(
    storage: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    assert main(["serve", "weavegraph.demo:demo_app", "--queue", *storage]) == 2
    err = capsys.readouterr().err
    assert "--queue needs PostgreSQL" in err
    assert list(tmp_path.iterdir()) == []


def test_serve_on_a_busy_port_is_a_diagnostic(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "weavegraph.demo:demo_app", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_an_invalid_graph_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken_flow.py").write_text(
        "import weavegraph as wg\n"
        "async def a(s, c):\n    return wg.NodePartial()\n"
        "def bad():\n"
        "    b = wg.GraphBuilder()\n"
        "    b.add_node('a', a)\n"
        "    b.add_edge(wg.START, 'a')\n"
        "    b.add_edge('a', 'nowhere')\n"
        "    return b\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["graph", "broken_flow:bad"]) == 2
    assert main(["run", "broken_flow:bad", "--input", "x"]) == 2
    err = capsys.readouterr().err
    assert "weavegraph::graph::unknown_node" in err
    assert "Traceback" not in err


def test_hints_name_the_database_and_never_a_memory_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    base = ["demo", "--delay", "0", "--events", "none", "--session", "h1"]
    assert main([*base, "--db", "sqlite://other.db"]) == 0
    out = capsys.readouterr().out
    assert "weavegraph sessions history h1 --db sqlite://other.db" in out
    assert main([*base, "--checkpointer", "memory"]) == 0
    captured = capsys.readouterr()
    assert "in memory: nothing was stored" in captured.out
    assert "sessions history" not in captured.out
    paused = [*base, "--checkpointer", "memory", "--interrupt-before", "collect"]
    assert main(paused) == 0
    err = capsys.readouterr().err
    assert "in memory: it cannot be resumed" in err
    assert "weavegraph demo --session" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    assert main([*base, "--db", "sqlite://other.db?mode=rwc"]) == 0  # resumed: same file
    assert "--db 'sqlite://other.db?mode=rwc'" in capsys.readouterr().out


def test_a_bad_log_setting_is_a_diagnostic(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEAVEGRAPH_LOG", "weavegraph=loud")
    assert main(["graph", "weavegraph.demo:demo_app"]) == 2
    err = capsys.readouterr().err
    assert "WEAVEGRAPH_LOG: unknown log level" in err
    assert "Traceback" not in err


def test_a_session_of_another_graph_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "other_flow.py").write_text(
        "import weavegraph as wg\n"
        "async def a(s, c):\n    return wg.NodePartial()\n"
        "def build():\n"
        "    b = wg.GraphBuilder()\n"
        "    b.add_node('a', a)\n"
        "    b.add_edge(wg.START, 'a')\n"
        "    b.add_edge('a', wg.END)\n"
        "    return b\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    paused = ["run", "weavegraph.demo:demo_app", "--input", "q", "--session", "x"]
    assert main([*paused, "--interrupt-before", "collect", "--events", "none"]) == 0
    capsys.readouterr()
    assert main(["resume", "x", "other_flow:build", "--events", "none"]) == 1
    err = capsys.readouterr().err
    assert "was not made by this graph" in err
    assert "'collect'" in err
    assert main(["sessions", "history", "x", "--json"]) == 0
    assert capsys.readouterr().out.count('"step"') == 3  # steps 0-2, nothing added


TARGET = "weavegraph.demo:demo_app"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", TARGET, "--state", "deep.json"], "nested more than 100 levels deep"),
        (["run", TARGET, "--state", "big.json"], "outside the signed 64-bit range"),
        (["resume", "s", TARGET, "--answer", "[" * 600 + "]" * 600], "--answer cannot be"),
    ],
)
def test_values_that_cannot_be_stored_are_usage_errors(
    argv: list[str],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.json").write_text('{"extra": {"a": ' + "[" * 600 + "]" * 600 + "}}")
    (tmp_path / "big.json").write_text('{"extra": {"a": 18446744073709551615}}')
    assert main([*argv, "--db", "sqlite://x.db"]) == 2
    err = capsys.readouterr().err
    assert fragment in " ".join(err.split())
    assert "Traceback" not in err


def test_a_session_whose_start_router_failed_once_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its stored next node is START itself (retry the start), which every graph has."""
    (tmp_path / "flaky_start.py").write_text(
        "from pathlib import Path\n"
        "import weavegraph as wg\n"
        "async def a(s, c):\n    return wg.NodePartial(extra={'a': 1})\n"
        "def route(s):\n"
        "    flag = Path('tried')\n"
        "    if not flag.exists():\n"
        "        flag.touch()\n"
        "        raise ConnectionError('not yet')\n"
        "    return 'a'\n"
        "b = wg.GraphBuilder().add_node('a', a)\n"
        "b.add_conditional_edge(wg.START, route, targets=['a'])\n"
        "app = b.add_edge('a', wg.END).compile()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("WEAVEGRAPH_SQLITE_URL", raising=False)
    assert (
        main(["run", "flaky_start:app", "--input", "q", "--session", "r", "--events", "none"]) == 1
    )
    assert "not yet" in capsys.readouterr().err
    assert main(["resume", "r", "flaky_start:app", "--events", "none"]) == 0
    out = capsys.readouterr().out
    assert "completed at step 1" in out
