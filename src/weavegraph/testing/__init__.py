"""What users need to test their graphs and backends.

* :class:`MemorySink` — capture a run's events (``sink.snapshot()``);
* :class:`FakeClock` — an injectable, controllable clock (``app.invoke(..., clock=clock)``);
* :func:`compare_runs` / :func:`record_run` — replay checks: same final state, same normalized
  events (timestamps ignored);
* ``weavegraph.testing.conformance`` — the checkpointer conformance suite.
"""

from ..events.sinks import MemorySink as MemorySink
from .clock import FakeClock as FakeClock
from .compare import RecordedRun as RecordedRun
from .compare import RunComparison as RunComparison
from .compare import compare_runs as compare_runs
from .compare import normalize_events as normalize_events
from .compare import record_run as record_run

__all__ = [
    "MemorySink",
    "FakeClock",
    "compare_runs",
    "record_run",
    "normalize_events",
    "RecordedRun",
    "RunComparison",
]
