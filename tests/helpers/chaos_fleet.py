"""The chaos suite's workers: ``weavegraph worker`` processes that faults are injected into.

:class:`Fleet` keeps ``count`` worker slots filled (a killed worker is respawned in its slot),
each process writing its own log file. :func:`inject_faults` picks a fault every 0.5-1.5 s
until told to stop: ``kill`` (``kill -9``, then a new worker in the slot), ``stop`` (SIGSTOP for
2.5x the lease, then SIGCONT: the worker wakes up fenced out) or ``cut`` (``pg_terminate_backend``
on every connection of the worker). What was injected is recorded in :class:`Faults`.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from queue_procs import raw, start_worker

KINDS = ("kill", "stop", "cut")
STOP_LEASES = 2.5
"""How long a stopped worker stays stopped, in leases (its claims expire meanwhile)."""
RECENTLY_S = 1.5
"""A worker continued this recently is not killed: it must first log what it lost."""


@dataclass
class Member:
    """One worker process in a slot: its log, and whether it is stopped."""

    slot: int
    process: subprocess.Popen[bytes]
    log: Path
    stopped: bool = False
    continued_at: float = 0.0
    stops: int = 0

    @property
    def name(self) -> str:
        """The name the worker claims under (``host:pid``)."""
        return f"{socket.gethostname()}:{self.process.pid}"


@dataclass
class Fleet:
    """``count`` workers of ``target`` on ``url``; :meth:`close` kills those left."""

    url: str
    count: int
    logs: Path
    target: str = "queue_flows:app"
    lease: float = 2.0
    args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict[str, str])
    members: list[Member] = field(default_factory=list[Member])
    retired: list[Member] = field(default_factory=list[Member])
    spawned: int = 0

    def start(self) -> None:
        self.members = [self._spawn(slot) for slot in range(self.count)]

    def _spawn(self, slot: int) -> Member:
        self.spawned += 1
        log = self.logs / f"worker-{slot}-{self.spawned}.log"
        process = start_worker(
            self.url, self.target, lease=self.lease, args=self.args, env=self.env, log=log
        )
        return Member(slot, process, log)

    def respawn(self, member: Member) -> Member:
        """Kill ``member`` (``kill -9``) and start a new worker in its slot."""
        member.process.kill()
        member.process.wait(10)
        self.retired.append(member)
        fresh = self._spawn(member.slot)
        self.members[member.slot] = fresh
        return fresh

    def all_members(self) -> list[Member]:
        return [*self.retired, *self.members]

    def close(self) -> None:
        for member in self.members:
            if member.process.poll() is None:
                os.kill(member.process.pid, signal.SIGCONT)
                member.process.kill()
            member.process.wait(10)

    def log_count(self, text: str) -> int:
        """How many lines of all workers' logs contain ``text``."""
        return sum(_count(m.log, text) for m in self.all_members())


def _count(path: Path, text: str) -> int:
    if not path.exists():
        return 0
    return sum(text in line for line in path.read_text(errors="replace").splitlines())


@dataclass
class Faults:
    """What :func:`inject_faults` did: ``(seconds since start, kind, worker name)``."""

    done: list[tuple[float, str, str]] = field(default_factory=list[tuple[float, str, str]])

    def by_kind(self) -> dict[str, int]:
        counts = Counter(kind for _, kind, _ in self.done)
        return {kind: counts[kind] for kind in KINDS}


async def inject_faults(
    fleet: Fleet, admin: psycopg.Connection[Any], schema: str, until: asyncio.Event,
    rng: random.Random,
) -> Faults:  # fmt: skip
    """Faults every 0.5-1.5 s until ``until`` is set; stopped workers are continued before
    this returns. ``admin``: an autocommit connection of the test's own."""
    faults = Faults()
    began = time.monotonic()
    continuing: set[asyncio.Task[None]] = set()
    try:
        while not until.is_set():
            try:
                await asyncio.wait_for(until.wait(), rng.uniform(0.5, 1.5))
                break
            except TimeoutError:
                pass
            kind = rng.choice(KINDS)
            busy = await asyncio.to_thread(_busy_workers, admin, schema)
            member = _victim(fleet, kind, busy, rng)
            if member is None:
                continue
            faults.done.append((round(time.monotonic() - began, 2), kind, member.name))
            if kind == "kill":
                fleet.respawn(member)
            elif kind == "stop":
                member.stopped = True
                member.stops += 1
                os.kill(member.process.pid, signal.SIGSTOP)
                task = asyncio.create_task(_continue_later(member, fleet.lease * STOP_LEASES))
                continuing.add(task)
                task.add_done_callback(continuing.discard)
            else:
                await asyncio.to_thread(_cut, admin, member.name)
    finally:
        if continuing:
            await asyncio.gather(*continuing)
    return faults


def _victim(fleet: Fleet, kind: str, busy: set[str], rng: random.Random) -> Member | None:
    """A worker for ``kind``: never a stopped one; a worker to stop must hold a running session
    (it must lose something); one to kill was not continued just now."""
    now = time.monotonic()
    candidates = [m for m in fleet.members if not m.stopped and m.process.poll() is None]
    if kind == "stop":
        candidates = [m for m in candidates if m.name in busy]
    if kind == "kill":
        candidates = [m for m in candidates if now - m.continued_at > RECENTLY_S]
    return rng.choice(candidates) if candidates else None


async def _continue_later(member: Member, seconds: float) -> None:
    await asyncio.sleep(seconds)
    os.kill(member.process.pid, signal.SIGCONT)
    member.stopped = False
    member.continued_at = time.monotonic()


def _busy_workers(admin: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = admin.execute(
        raw(f"SELECT DISTINCT worker FROM \"{schema}\".sessions WHERE run_status = 'running'")
    ).fetchall()
    return {str(worker) for (worker,) in rows if worker is not None}


def _cut(admin: psycopg.Connection[Any], name: str) -> None:
    """``pg_terminate_backend`` on every connection of the worker called ``name``."""
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (f"weavegraph worker {name}"[:63],),
    )
