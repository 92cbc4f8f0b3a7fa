"""Task executors: who runs the node tasks of a step (the run loop's seam).

The default, ``LocalTaskExecutor``, runs them on the event loop. ``RayTaskExecutor`` runs the
tasks of very wide steps on a Ray cluster (the optional ``ray`` extra) while the session's owner
merges and commits. Pass one as ``AppRunner(app, checkpointer, executor=...)``; any object with
``TaskExecutor``'s ``run_tasks`` will do.
"""

from __future__ import annotations

from ..runtime.executor import LocalTaskExecutor, NodeTask, TaskExecutor
from ._ray import RayTaskExecutor, RemoteTaskError

__all__ = ["LocalTaskExecutor", "NodeTask", "RayTaskExecutor", "RemoteTaskError", "TaskExecutor"]
