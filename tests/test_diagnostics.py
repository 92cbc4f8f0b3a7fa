"""weavegraph.diagnostics: how errors are shown to people."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

import weavegraph as wg
from weavegraph import diagnostics


def noop(snapshot: Any, ctx: Any) -> None:
    return None


def broken_graph_error() -> wg.GraphCompileError:
    builder = wg.GraphBuilder().add_node("a", noop).add_node("b", noop).add_node("lonely", noop)
    builder.add_edge(wg.START, "a").add_edge("a", "b").add_edge("b", "a").add_edge("a", "ghost")
    with pytest.raises(wg.GraphCompileError) as info:
        builder.compile()
    return info.value


def test_compile_error_shows_code_message_every_problem_and_help() -> None:
    err = broken_graph_error()
    text = diagnostics.render(err)
    assert text.startswith(f"error[{err.code}]: {err.message}\n")
    assert f"problems found ({len(err.problems)})" in text
    for index, problem in enumerate(err.problems, start=1):
        assert f"{index}. {problem.code}: {problem.message}" in text
    assert "nodes: a, b" in text  # the cycle's nodes
    assert "nodes: ghost" in text
    assert text.rstrip().endswith(f"help: {err.help}")
    # every problem's help is shown once (the headline's at the end)
    for problem in err.problems:
        assert text.count(problem.help) == 1


def test_single_problem_lists_its_nodes_without_a_problem_list() -> None:
    text = diagnostics.render(wg.DuplicateNode("worker"))
    assert text == (
        "error[weavegraph::graph::duplicate_node]: the node 'worker' was added twice\n"
        "  node: worker\n"
        f"  help: {wg.DuplicateNode.help}\n"
    )


def caused_by(err: BaseException, cause: BaseException) -> BaseException:
    """What ``raise err from cause`` records."""
    err.__cause__ = cause
    err.__suppress_context__ = True
    return err


def test_node_run_error_shows_node_step_and_cause_chain() -> None:
    value = caused_by(ValueError("bad value\nwith detail"), KeyError("missing"))
    text = diagnostics.render(caused_by(wg.NodeRunError("fetch", 4, "bad value"), value))
    assert "error[weavegraph::run::node_failed]" in text
    assert "  node: fetch\n" in text
    assert "  step: 4\n" in text
    assert "  caused by: ValueError: bad value\n" in text
    assert "    caused by: KeyError: 'missing'\n" in text
    assert "with detail" not in text.split("caused by")[1]  # one line per cause


def test_foreign_exceptions_show_type_and_message() -> None:
    assert diagnostics.render(RuntimeError("disk full")) == "error[RuntimeError]: disk full\n"
    assert (
        diagnostics.render(KeyboardInterrupt()) == "error[KeyboardInterrupt]: KeyboardInterrupt\n"
    )


def test_implicit_context_is_shown_unless_suppressed() -> None:
    err = RuntimeError("while saving")
    err.__context__ = OSError("socket closed")  # what raising inside an except block records
    assert "caused by: OSError: socket closed" in diagnostics.render(err)
    err.__suppress_context__ = True  # `raise ... from None`
    assert "caused by" not in diagnostics.render(err)


def test_long_cause_chains_are_elided() -> None:
    err: BaseException = ValueError("root")
    for depth in range(20):
        err = caused_by(ValueError(f"level {depth}"), err)
    text = diagnostics.render(err)
    assert text.count("caused by") == diagnostics.MAX_CAUSES
    assert "more causes elided" in text


def test_render_prints_with_colour_on_a_console_and_print_diagnostic_prints() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=200)
    plain = diagnostics.render(wg.UnknownNode("x"), console=console)
    coloured = buffer.getvalue()
    assert "\x1b[" in coloured
    assert "\x1b[" not in plain
    assert "unknown node 'x'" in coloured
    other = io.StringIO()
    diagnostics.print_diagnostic(wg.UnknownNode("x"), Console(file=other, width=200))
    assert other.getvalue() == plain


def test_print_diagnostic_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    diagnostics.print_diagnostic(wg.MissingEntry())
    captured = capsys.readouterr()
    assert "weavegraph::graph::missing_entry" in captured.err
    assert captured.out == ""


def test_exception_groups_list_their_members() -> None:
    group = ExceptionGroup("two nodes failed", [ValueError("a broke"), KeyError("b")])
    text = diagnostics.render(group)
    assert text.startswith("error[ExceptionGroup]: two nodes failed (2 sub-exceptions)\n")
    assert "  1) ValueError: a broke\n" in text
    assert "  2) KeyError: 'b'\n" in text


def test_text_from_users_is_never_read_as_rich_markup() -> None:
    text = diagnostics.render(wg.UnknownNode("[bold]x[/bold]"))
    assert "unknown node '[bold]x[/bold]'" in text
    assert "node: [bold]x[/bold]" in text
