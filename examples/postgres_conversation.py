"""A long conversation on PostgreSQL that survives restarts: each run of this script is a new
process that picks the session up where the last one left it and adds one turn.

Run: WEAVEGRAPH_POSTGRES_URL=postgresql://localhost/weavegraph \\
       python examples/postgres_conversation.py "hello"          (then again with other text)
     python examples/postgres_conversation.py --forget           (deletes the conversation)
"""

from __future__ import annotations

import asyncio
import sys

import weavegraph as wg

SESSION = sys.argv[2] if len(sys.argv) > 2 else "postgres-conversation"


async def reply(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    said = [m.content for m in snapshot.messages if m.role == "user"]
    text = f"turn {len(said)}: you said {said[-1]!r}"
    if len(said) > 1:
        text += f" (and before that {said[-2]!r})"
    return wg.NodePartial(messages=[wg.Message.assistant(text)])


def build() -> wg.App:
    builder = wg.GraphBuilder().add_node("reply", reply)
    return builder.add_edge(wg.START, "reply").add_edge("reply", wg.END).compile()


async def main(text: str) -> None:
    # "postgres" resolves the URL: WEAVEGRAPH_POSTGRES_URL, then DATABASE_URL, then localhost.
    async with wg.AppRunner(build(), "postgres") as runner:
        if text == "--forget":
            print(f"forgot it: {await runner.delete_session(SESSION)}")
            return
        init = await runner.create_iterative_session(SESSION, wg.VersionedState(), entry="reply")
        print(f"{'resumed' if init.resumed else 'started'} {SESSION} at step {init.step}")
        turn = wg.NodePartial(messages=[wg.Message.user(text)])
        state = await runner.invoke_next(SESSION, turn, entry="reply")
        print(state.messages[-1].content)
        print(f"{len(state.messages)} messages stored, {len(await runner.history(SESSION))} steps")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "hello"))
