"""state_growth (SPEC §8): 1,000 steps each appending a 1 KB message, saved through SQLite.

Checkpoints are built directly, as the runner builds them: each step's state is the previous one
plus one message (sharing the previous items). Prints bytes on disk (database + WAL after folding
the WAL in), payload bytes, their ratio, and the mean save time of the first and last 100 steps.
Targets: <= 2x payload on disk; last-100 step time <= 1.5x first-100.

    .venv/bin/python bench/bench_storage.py [--steps 1000] [--size 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from weavegraph.checkpoint.base import Checkpoint
from weavegraph.checkpoint.sqlite import SQLiteCheckpointer
from weavegraph.state import FrozenDict, Message, VersionedState
from weavegraph.state._versioned import make_versions


async def run(steps: int, size: int, folder: Path) -> dict[str, float]:
    cp = await SQLiteCheckpointer.connect(f"sqlite://{folder}/state_growth.db")
    state = VersionedState(messages=(Message.user("start"),))
    durations: list[float] = []
    payload = 0
    for step in range(1, steps + 1):
        message = Message.assistant(f"{step:06d}" + "x" * (size - 6))
        payload += len(message.content)
        state = VersionedState(
            messages=(*state.messages, message),
            extra=FrozenDict(),
            errors=state.errors,
            versions=make_versions(step + 1, 1, 1),
        )
        checkpoint = Checkpoint(
            session_id="growth", step=step, state=state, frontier=("grow",),
            ran_nodes=("grow",), updated_channels=("messages",),
        )  # fmt: skip
        started = time.perf_counter()
        await cp.save(checkpoint)
        durations.append(time.perf_counter() - started)
    await cp.checkpoint_wal()
    stats = await cp.stats()
    started = time.perf_counter()
    latest = await cp.load_latest("growth")
    resume = time.perf_counter() - started
    assert latest is not None
    assert len(latest.state.messages) == steps + 1
    await cp.close()
    window = max(1, min(100, steps // 10))
    return {
        "disk_bytes": stats.bytes,
        "payload_bytes": payload,
        "ratio": stats.bytes / payload,
        "first_ms": 1000 * sum(durations[:window]) / window,
        "last_ms": 1000 * sum(durations[-window:]) / window,
        "resume_ms": 1000 * resume,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="state_growth storage benchmark (SQLite)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        r = asyncio.run(run(args.steps, args.size, Path(folder)))
    print("state_growth (SQLite)")
    print(f"  on disk   {r['disk_bytes'] / 1e6:8.2f} MB  (db + wal, after wal checkpoint)")
    print(f"  payload   {r['payload_bytes'] / 1e6:8.2f} MB")
    print(f"  ratio     {r['ratio']:8.2f} x   (target <= 2.0)")
    print(f"  first-100 {r['first_ms']:8.3f} ms/step")
    print(
        f"  last-100  {r['last_ms']:8.3f} ms/step  ({r['last_ms'] / r['first_ms']:.2f}x, target <= 1.5)"
    )
    print(f"  resume    {r['resume_ms']:8.3f} ms (load_latest of {args.steps + 1} messages)")


if __name__ == "__main__":
    main()
