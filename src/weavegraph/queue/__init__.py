"""Scale-out on PostgreSQL: queued sessions, stateless workers, leases and fencing.

``Worker`` claims sessions from the database and runs them through the same run loop as every
other run; ``QueueClient`` (and ``AppRunner.enqueue``) put run requests in the inbox. See the
"Running on many machines" section of the operations guide.
"""

from __future__ import annotations

from .client import QueueClient
from .inbox import Multitask
from .worker import DEFAULT_LEASE_S, Worker, WorkerOptions

__all__ = ["DEFAULT_LEASE_S", "Multitask", "QueueClient", "Worker", "WorkerOptions"]
