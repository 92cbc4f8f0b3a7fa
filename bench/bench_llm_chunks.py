"""What storing every LLM chunk costs: a long streamed answer, stored token by token vs final only.

    .venv/bin/python bench/bench_llm_chunks.py [--tokens 2000] [--answers 20] [--reps 3]

A node streams ``--tokens`` chunk events (a word each, as ``wg.llm.respond`` does for a model's
deltas) and then the final event with the whole text; the other graph emits only the final. Both
run ``--answers`` steps as one ``AppRunner`` session on SQLite (events stored with each step).
Printed, best of ``--reps``: time per answer, the database bytes per answer, and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import weavegraph as wg

WORD = " token"


def answer_app(tokens: int, answers: int, *, chunks: bool) -> wg.App:
    async def speak(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        n = snapshot.extra.get("n", 0) + 1
        stream_id = f"answer-{n}"
        if chunks:
            for _ in range(tokens):
                ctx.emit_llm_chunk(WORD, stream_id=stream_id, kind="text")
        ctx.emit_llm_final(WORD * tokens, stream_id=stream_id, model="bench")
        return wg.NodePartial(extra={"n": n})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "speak" if snapshot.extra["n"] < answers else wg.END

    builder = wg.GraphBuilder().add_node("speak", speak).add_edge(wg.START, "speak")
    builder.add_conditional_edge("speak", again, targets=["speak", wg.END])
    return builder.with_max_steps(answers + 5).compile()


def _bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


async def measure(tokens: int, answers: int, *, chunks: bool) -> tuple[float, int]:
    """Seconds per answer and database bytes per answer (after a checkpoint of the WAL)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "chunks.db"
        app = answer_app(tokens, answers, chunks=chunks)
        async with wg.AppRunner(app, "sqlite", db_url=f"sqlite://{db}") as runner:
            await runner.create_session("warm-up", "go")
            empty = _bytes(db)
            await runner.create_session("answers", "go")
            t0 = time.perf_counter()
            await runner.run_until_complete("answers")
            elapsed = time.perf_counter() - t0
        return elapsed / answers, (_bytes(db) - empty) // answers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, tuple[float, int]] = {}
    for label, chunks in (("final only", False), ("every chunk", True)):
        runs = [await measure(args.tokens, args.answers, chunks=chunks) for _ in range(args.reps)]
        rows[label] = (min(r[0] for r in runs), min(r[1] for r in runs))
    print(f"{args.tokens} tokens per answer, {args.answers} answers, SQLite, best of {args.reps}")
    for label, (seconds, size) in rows.items():
        print(f"  {label:<12} {seconds * 1e3:8.2f} ms/answer  {size / 1024:8.1f} KiB/answer")
    (t_final, b_final), (t_all, b_all) = rows["final only"], rows["every chunk"]
    print(
        f"  storing every chunk: +{(t_all - t_final) * 1e3:.2f} ms and "
        f"+{(b_all - b_final) / 1024:.1f} KiB per answer "
        f"({(t_all - t_final) / args.tokens * 1e6:.2f} us and {(b_all - b_final) / args.tokens:.0f}"
        " bytes per chunk)"
    )


if __name__ == "__main__":
    asyncio.run(main())
