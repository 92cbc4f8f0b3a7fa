"""When a run gives the event loop a turn between supersteps (see ``LOOP_TURN_EVERY``)."""

from __future__ import annotations

import asyncio
import time
from typing import Final

__all__ = ["LOOP_TURN_EVERY", "LoopTurns"]

# A step may finish without ever suspending (inline nodes, an inline checkpoint). The event loop
# gets a turn at a step boundary when the step let it run (it may have polled a signal's wake-up
# byte, whose handler must run before a stop request is checked) and otherwise once this many
# seconds passed, so signals, stop requests, event subscribers and other sessions get through.
# (A turn at every boundary would cost up to a fifth of a fast checkpointed step.)
LOOP_TURN_EVERY: Final = 0.001


class LoopTurns:
    """Decides, at each step boundary of one run, whether the event loop gets a turn there."""

    __slots__ = ("_fired", "_last")

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._arm()

    def _arm(self) -> None:
        # A callback queued now has run by the next boundary iff the loop ran in between.
        self._fired = False
        asyncio.get_running_loop().call_soon(self._fire)

    def _fire(self) -> None:
        self._fired = True

    def due(self) -> bool:
        return self._fired or time.monotonic() - self._last >= LOOP_TURN_EVERY

    async def take(self) -> None:
        """Two turns: the first polls for I/O (a signal's wake-up byte), whose callbacks queue
        behind this task; the second lets them run before the caller checks for a stop."""
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self._last = time.monotonic()
        self._arm()
