"""The PostgreSQL schema of the work queue (migration 6; see ``weavegraph.queue``).

``sessions`` gains the queue columns: ``run_status`` (a ``RunStatus`` value, NULL while no worker
manages the session), ``epoch`` (the fencing epoch, one more at every claim), ``claim_token`` and
``lease_until`` (the current claim, its expiry on the database's clock), ``attempts`` (claims since
the session last made progress), ``available_at`` and ``priority`` (queue order), ``worker`` (who
holds the claim), ``cancel_requested`` and ``last_error``. ``steps.epoch`` records which claim
committed each step. ``inbox`` holds run requests (start, answer, update, cancel) in arrival order;
an idempotency key makes a retried request a no-op.
"""

from __future__ import annotations

__all__ = ["QUEUE_MIGRATION"]

QUEUE_MIGRATION: tuple[str, ...] = (
    """ALTER TABLE {schema}.sessions
        ADD COLUMN run_status TEXT,
        ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN claim_token TEXT,
        ADD COLUMN lease_until TIMESTAMPTZ,
        ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN available_at TIMESTAMPTZ,
        ADD COLUMN priority INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN worker TEXT,
        ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false,
        ADD COLUMN last_error TEXT""",
    # The two claim probes: expired leases first, then queued work in priority order.
    """CREATE INDEX sessions_leased ON {schema}.sessions (lease_until)
        WHERE run_status = 'running'""",
    """CREATE INDEX sessions_queued ON {schema}.sessions (priority DESC, available_at, id)
        WHERE run_status = 'queued'""",
    "ALTER TABLE {schema}.steps ADD COLUMN epoch BIGINT",
    """CREATE TABLE {schema}.inbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('start', 'answer', 'update', 'cancel')),
        payload BYTEA NOT NULL,
        idempotency_key TEXT UNIQUE,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        done_at TIMESTAMPTZ)""",
    "CREATE INDEX inbox_pending ON {schema}.inbox (session_id, id) WHERE done_at IS NULL",
)
