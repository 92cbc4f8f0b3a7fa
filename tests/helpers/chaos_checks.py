"""The invariants the chaos suite checks on a database workers ran sessions in.

:func:`install_audit` adds a trigger to a test schema that records every step stamped with a
claim's epoch lower than the session's epoch at that moment: a step committed by a fenced-out
worker. :func:`violations` then compares each session with an uninterrupted reference run of
the same input (:func:`reference_runs`) and lists every broken invariant, in words:

- the session completed, and its final state equals the reference's;
- its steps are 0..n, each committed once, with the reference's nodes, and the epochs along its
  history never go backwards; no step was committed by a fenced-out worker (the audit);
- its events are numbered 0..m without a gap; the events of each step's nodes are stored once
  each, exactly the reference's; the log ends with a ``completed`` stream end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from queue_procs import raw

import weavegraph as wg
from weavegraph.queue import QueueClient
from weavegraph.status import RunStatus

END_SCOPE = "__weavegraph_stream_end__"


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted run of a session leaves: final state, steps' nodes, node events."""

    state: dict[str, Any]
    ran: list[tuple[str, ...]]
    node_events: Counter[tuple[Any, ...]]


def install_audit(admin_url: str, schema: str) -> None:
    """Record steps stamped with an epoch older than their session's (fenced-out commits)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            raw(
                f'CREATE TABLE "{schema}".fenced_out (session_id text, step integer, '
                "epoch bigint, session_epoch bigint)"
            )
        )
        conn.execute(
            raw(
                f'CREATE FUNCTION "{schema}".audit_epoch() RETURNS trigger AS $$ '
                "DECLARE current bigint; BEGIN "
                f'SELECT epoch INTO current FROM "{schema}".sessions WHERE id = NEW.session_id; '
                "IF NEW.epoch IS NOT NULL AND NEW.epoch < current THEN "
                f'INSERT INTO "{schema}".fenced_out VALUES '
                "(NEW.session_id, NEW.step, NEW.epoch, current); END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        conn.execute(
            raw(
                f'CREATE TRIGGER audit_epoch AFTER INSERT OR UPDATE OF epoch ON "{schema}".steps '
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".audit_epoch()'
            )
        )


def node_events(events: Sequence[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """The events nodes emitted, as ``(step, node, scope, message)`` counts (order within a
    step depends on timing)."""
    return Counter(
        (e["metadata"].get("step"), e["metadata"].get("node_id"), e["scope"], e["message"])
        for e in events
        if e["type"] != "diagnostic"
    )


async def reference_runs(app: wg.App, inputs: dict[str, str], db: Path) -> dict[str, Reference]:
    """Each session run once, uninterrupted, in this process (on SQLite at ``db``)."""
    found: dict[str, Reference] = {}
    async with await wg.SQLiteCheckpointer.connect(f"sqlite://{db}") as cp:
        async with wg.AppRunner(app, cp) as runner:
            for sid, text in inputs.items():
                await runner.drive(sid, text)
        for sid in inputs:
            latest = await cp.load_latest(sid)
            assert latest is not None
            found[sid] = Reference(
                state=latest.state.to_json_value(),
                ran=[info.ran_nodes for info in await cp.history(sid)],
                node_events=node_events(await cp.load_events(sid)),
            )
    return found


async def violations(
    client: QueueClient, admin_url: str, schema: str, references: dict[str, Reference]
) -> list[str]:
    """Every broken invariant, one line each (empty: all hold)."""
    found: list[str] = []
    epochs = _epochs(admin_url, schema)
    for sid, reference in references.items():
        found += [f"{sid}: {problem}" for problem in await _session(client, sid, reference)]
        along = epochs.get(sid, [])
        if along != sorted(along):
            found.append(f"{sid}: the epochs along its history go backwards: {along}")
    found += [
        f"{sid}: step {step} was committed by a fenced-out worker (epoch {epoch}, the session "
        f"was at epoch {current})"
        for sid, step, epoch, current in _fenced_out(admin_url, schema)
    ]
    return found


async def _session(client: QueueClient, sid: str, reference: Reference) -> list[str]:
    cp = client.checkpointer
    problems: list[str] = []
    status = (await client.status(sid)).status
    if status is not RunStatus.COMPLETED:
        problems.append(f"status {status}, not completed")
    latest = await cp.load_latest(sid)
    if latest is None:
        return [*problems, "nothing stored"]
    if latest.state.to_json_value() != reference.state:
        problems.append(f"final state {latest.state.to_json_value()} != {reference.state}")
    history = await cp.history(sid)
    steps = [info.step for info in history]
    if steps != list(range(len(reference.ran))):
        problems.append(f"steps {steps}, expected 0..{len(reference.ran) - 1}")
    elif [info.ran_nodes for info in history] != reference.ran:
        problems.append(f"steps ran {[i.ran_nodes for i in history]}, expected {reference.ran}")
    problems += _events(await cp.load_events(sid), reference)
    return problems


def _events(events: list[dict[str, Any]], reference: Reference) -> list[str]:
    problems: list[str] = []
    seqs = [e["seq"] for e in events]
    if seqs != list(range(len(seqs))):
        problems.append(f"event seqs are not 0..{len(seqs) - 1}: {seqs}")
    got = node_events(events)
    if got != reference.node_events:
        missing = reference.node_events - got
        extra = got - reference.node_events
        problems.append(f"node events differ: missing {dict(missing)}, extra {dict(extra)}")
    if (
        not events
        or events[-1]["scope"] != END_SCOPE
        or " status=completed " not in (events[-1]["message"] + " ")
    ):
        problems.append(f"the log does not end with a completed stream end: {events[-1:]}")
    return problems


def _epochs(admin_url: str, schema: str) -> dict[str, list[int]]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            raw(f'SELECT session_id, epoch FROM "{schema}".steps ORDER BY session_id, step')
        ).fetchall()
    found: dict[str, list[int]] = {}
    for sid, epoch in rows:
        found.setdefault(str(sid), []).append(-1 if epoch is None else int(epoch))
    return found


def _fenced_out(admin_url: str, schema: str) -> list[tuple[str, int, int, int]]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            raw(f'SELECT session_id, step, epoch, session_epoch FROM "{schema}".fenced_out')
        ).fetchall()
    return [(str(s), int(st), int(e), int(c)) for s, st, e, c in rows]


def dump(admin_url: str, schema: str, sid: str) -> str:
    """What the database holds of ``sid`` (its steps with their epochs, events, requests), to
    tell what happened to a session that broke an invariant."""
    lines = [f"session {sid}"]
    with psycopg.connect(admin_url) as conn:
        for title, query in (
            ("steps", f'SELECT step, epoch, created_at FROM "{schema}".steps '
                      "WHERE session_id = %s ORDER BY step"),
            ("events", f'SELECT seq, step, data FROM "{schema}".events '
                       "WHERE session_id = %s ORDER BY seq"),
            ("inbox", f'SELECT id, kind, created_at, done_at FROM "{schema}".inbox '
                      "WHERE session_id = %s ORDER BY id"),
        ):  # fmt: skip
            lines.append(title)
            lines += [f"  {row}" for row in conn.execute(raw(query), (sid,)).fetchall()]
    return "\n".join(lines)
