"""Human approval: a node asks a person before acting; the session waits (checkpointed, visible
to any process reading the database) until someone answers.

Run: python examples/human_approval.py   (creates approval.db in the working directory)
"""

from __future__ import annotations

import asyncio

import weavegraph as wg


async def draft(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    feedback = snapshot.extra.get("feedback")
    text = "Dear team, the release is out." if feedback else "hi all, release is out, cheers"
    return wg.NodePartial(extra={"email": text})


async def review(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    answer = ctx.interrupt({"question": "Send this email?", "email": snapshot.extra["email"]})
    if answer["approved"]:
        return wg.NodePartial().with_frontier_replace(["send"])
    return wg.NodePartial(extra={"feedback": answer["feedback"]}).with_frontier_replace(["draft"])


async def send(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    return wg.NodePartial(messages=[wg.Message.assistant(f"sent: {snapshot.extra['email']}")])


def build() -> wg.App:
    builder = wg.GraphBuilder()
    builder.add_node("draft", draft).add_node("send", send)
    builder.add_node("review", review, frontier_targets=["send", "draft"])
    builder.add_edge(wg.START, "draft").add_edge("draft", "review").add_edge("send", wg.END)
    return builder.compile()


async def show(runner: wg.AppRunner, session_id: str) -> None:
    info = await runner.session_info(session_id)
    if info.interrupt is not None:
        print(
            f"{session_id}: waiting for an answer from {info.interrupt.node}: {info.interrupt.value}"
        )
    else:
        print(f"{session_id}: {info.status}")


async def main() -> None:
    checkpointer = await wg.SQLiteCheckpointer.connect("sqlite://approval.db")
    async with wg.AppRunner(build(), checkpointer) as runner:
        await runner.create_session("email", wg.VersionedState())
        await runner.run_until_complete("email")  # returns at the question
        await show(runner, "email")
        await runner.resume("email", {"approved": False, "feedback": "more formal"})
        await show(runner, "email")  # a new draft, a new question
        final = await runner.resume("email", {"approved": True})
        print(final.messages[-1].content)
        await show(runner, "email")
        for info in await runner.list_sessions():
            print(f"listed: {info.session_id} {info.status}")
    await checkpointer.close()

    # Without a runner there is nobody to answer: invoke says so instead of returning.
    try:
        await build().invoke(wg.VersionedState())
    except wg.Interrupted as pause:
        print(f"invoke paused: {pause.interrupt.value['question']}")


if __name__ == "__main__":
    asyncio.run(main())
