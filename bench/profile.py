"""Profile one weavegraph workload: repeat it in-process under pyinstrument and print the tree.

``.bench-venv/bin/python bench/profile.py chain100 --times 300`` (``make bench`` installs
pyinstrument there). Repeating the workload many times makes the per-step costs dominate the
import and set-up costs that a single run would show. The SQLite writer thread is invisible to
pyinstrument (it samples the event loop's thread); use ``py-spy record --threads`` for that.
"""
# pyright: reportMissingImports=false, reportUnknownMemberType=false, reportUnknownVariableType=false

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from _common import WORKLOADS
from pyinstrument import Profiler
from wg_workloads import ALL_WORKLOADS

WORKLOADS_BY_NAME = {workload.__name__: workload for workload in ALL_WORKLOADS}


async def repeat(name: str, size: int, times: int, workdir: Path) -> None:
    for i in range(times):
        run_dir = workdir / str(i)
        run_dir.mkdir()
        await WORKLOADS_BY_NAME[name](size, run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--times", type=int, default=20, help="repetitions in one process")
    parser.add_argument("--interval", type=float, default=0.0002, help="sampling interval (s)")
    args = parser.parse_args()
    size = args.size or WORKLOADS[args.workload].size
    with tempfile.TemporaryDirectory(prefix="weavegraph-profile-") as tmp:
        profiler = Profiler(interval=args.interval, async_mode="enabled")
        with profiler:
            asyncio.run(repeat(args.workload, size, args.times, Path(tmp)))
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
