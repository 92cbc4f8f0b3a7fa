"""Human-readable diagnostics for errors: code, message, nodes involved, every problem, causes, help.

``render(err)`` returns the diagnostic as plain text (and prints it, coloured, on ``console`` when one
is given); ``print_diagnostic(err)`` prints it to standard error. Any exception can be rendered: those
outside the weavegraph tree show their type and message.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import cast

from rich.console import Console
from rich.text import Text

from .errors import GraphCompileError, WeavegraphError

__all__ = ["diagnostic_text", "print_diagnostic", "render"]

MAX_CAUSES = 8
"""How many links of a ``__cause__`` chain are shown before the rest is elided."""


def render(err: BaseException, *, console: Console | None = None, width: int = 100) -> str:
    """The diagnostic for ``err`` as plain text; also printed (with colour) on ``console`` if given."""
    text = diagnostic_text(err)
    if console is not None:
        console.print(text, soft_wrap=True)
    buffer = io.StringIO()
    plain = Console(file=buffer, width=width, no_color=True, force_terminal=False, highlight=False)
    plain.print(text, soft_wrap=True)
    return buffer.getvalue()


def print_diagnostic(err: BaseException, console: Console | None = None) -> None:
    """Print the diagnostic for ``err`` on ``console`` (standard error by default)."""
    target = console or Console(stderr=True, highlight=False)
    target.print(diagnostic_text(err), soft_wrap=True)


def diagnostic_text(err: BaseException) -> Text:
    """The diagnostic for ``err`` as styled rich ``Text`` (for embedding in other rich output)."""
    help_text = err.help if isinstance(err, WeavegraphError) else ""
    text = Text()
    text.append_text(_headline(err))
    _detail_lines(text, err, indent="  ")
    problems = err.problems if isinstance(err, GraphCompileError) else []
    if len(problems) > 1:
        text.append(f"\n  problems found ({len(problems)}):", style="bold")
        for index, problem in enumerate(problems, start=1):
            text.append(f"\n    {index}. ")
            text.append(problem.code, style="red")
            text.append(f": {problem.message}")
            if problem.nodes:
                text.append(f"\n       nodes: {', '.join(problem.nodes)}", style="cyan")
            if problem.help and problem.help != help_text:
                text.append(f"\n       help: {problem.help}", style="green")
    for index, sub in enumerate(_group_members(err), start=1):
        text.append(f"\n  {index}) ", style="yellow")
        text.append(_one_line(sub))
    for depth, cause in enumerate(_causes(err)):
        if depth == MAX_CAUSES:
            text.append("\n  ... (more causes elided)", style="dim")
            break
        text.append(f"\n  {'  ' * depth}caused by: ", style="yellow")
        text.append(_one_line(cause))
    if help_text:
        text.append("\n  help: ", style="bold green")
        text.append(help_text, style="green")
    return text


def _headline(err: BaseException) -> Text:
    code = err.code if isinstance(err, WeavegraphError) else type(err).__name__
    message = str(err)
    head = Text("error", style="bold red")
    head.append(f"[{code}]", style="red")
    head.append(": ")
    head.append(message or type(err).__name__, style="bold")
    return head


def _detail_lines(text: Text, err: BaseException, *, indent: str) -> None:
    nodes = err.nodes if isinstance(err, WeavegraphError) else ()
    if nodes:
        label = "node" if len(nodes) == 1 else "nodes"
        text.append(f"\n{indent}{label}: ", style="bold")
        text.append(", ".join(nodes), style="cyan")
    step = getattr(err, "step", None)
    if isinstance(step, int) and not isinstance(step, bool):
        text.append(f"\n{indent}step: ", style="bold")
        text.append(str(step))


def _group_members(err: BaseException) -> tuple[BaseException, ...]:
    """The members of an exception group (several nodes can fail in one step), else nothing."""
    if isinstance(err, BaseExceptionGroup):
        return cast("BaseExceptionGroup[BaseException]", err).exceptions
    return ()


def _causes(err: BaseException) -> Iterator[BaseException]:
    """The explicit ``__cause__`` chain, falling back to the implicit context (no cycles)."""
    seen = {id(err)}
    current = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )


def _one_line(err: BaseException) -> str:
    message = str(err).strip().splitlines()
    first = message[0] if message else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
