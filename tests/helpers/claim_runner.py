"""An in-process run in its own process: ``python claim_runner.py URL SID LEASE_S``.

Drives ``SID`` of ``queue_flows.slow_app`` to its end through an ``AppRunner`` on PostgreSQL
(claims lasting ``LEASE_S`` seconds), printing ``step N`` after each step and ``done STATUS``
at the end; ``busy MESSAGE`` (exit status 3) when another process holds the session.
"""

from __future__ import annotations

import asyncio
import sys

import queue_flows

import weavegraph as wg


async def main(url: str, sid: str, lease_s: float) -> int:
    cp = await wg.PostgresCheckpointer.connect(url, lease_s=lease_s)
    try:
        async with wg.AppRunner(queue_flows.build_slow_app(), cp) as runner:

            async def on_step(report: wg.StepReport) -> None:
                print(f"step {report.step}", flush=True)

            try:
                result = await runner.drive(sid, "go", on_step=on_step)
            except wg.SessionBusy as exc:
                print(f"busy {exc}", flush=True)
                return 3
            print(f"done {result.status}", flush=True)
            return 0
    finally:
        await cp.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]))))
