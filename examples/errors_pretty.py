"""Pretty errors: compile errors you can match on, every problem at once, rendered diagnostics.

Run: python examples/errors_pretty.py
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def step(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
    return None


def build_app(builder: wg.GraphBuilder) -> wg.App | None:
    try:
        return builder.compile()
    except wg.MissingEntry:
        print("graph has no Start entry")
    except wg.UnknownNode as err:
        print(f"unknown node referenced: {err.node}")
        print(wg.diagnostics.render(err))
    except wg.GraphCompileError as err:
        print(f"graph validation failed: {err} ({len(err.problems)} problems)")
    return None


async def explode(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
    raise wg.ProviderError("fake-llm", "quota exhausted")


async def main() -> None:
    no_entry = wg.GraphBuilder()
    no_entry.add_node("a", step)
    no_entry.add_edge("a", wg.END)
    build_app(no_entry)

    typo = wg.GraphBuilder()
    typo.add_node("a", step)
    typo.add_edge(wg.START, "a")
    typo.add_edge("a", "b")  # never added
    build_app(typo)

    failing = wg.GraphBuilder()
    failing.add_node("call_model", explode)
    failing.add_edge(wg.START, "call_model")
    failing.add_edge("call_model", wg.END)
    app = build_app(failing)
    assert app is not None
    try:
        await app.invoke(wg.VersionedState.new_with_user_message("hi"))
    except wg.NodeRunError as err:
        print(f"run failed in node {err.node!r} at step {err.step}; cause: {err.__cause__!r}")
        print(wg.diagnostics.render(err))


if __name__ == "__main__":
    asyncio.run(main())
