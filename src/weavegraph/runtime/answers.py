"""Continuing a paused session: the answer to ``ctx.interrupt``, an edit first, or a jump.

``AppRunner.resume`` calls :func:`prepare_resume` under the session's lock, then drives the
session as usual; every decision taken here is saved in the cursor before anything runs, so a
stop or a crash right after still continues as asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from ..errors import SessionError, StateError
from ..partial import NodePartial
from ..types import END
from . import loop
from .session import Session

__all__ = ["prepare_resume"]


async def prepare_resume(
    session: Session,
    value: Any,
    *,
    update: NodePartial | None = None,
    goto: Sequence[str] | None = None,
) -> None:
    """Apply ``update`` (recorded as its own step), then either answer the pending interrupt with
    ``value`` or, with ``goto``, drop it and continue at those nodes instead.

    A session at a static pause (nothing pending) continues with ``value`` None; a value given
    to a session that asks nothing is a SessionError, as is a ``goto`` naming no node.
    """
    targets = _check_goto(session, goto)
    if update is not None and not isinstance(cast(object, update), NodePartial):
        raise StateError(f"resume's update must be a NodePartial, got {type(update).__name__}")
    pending = session.cursor.interrupt
    if pending is None and value is not None and targets is None:
        raise SessionError(f"session {session.session_id!r} is not waiting for input")
    if update is not None and not update.is_empty():
        await loop.record_update(session, update, source="resume")
    if targets is not None:
        session.cursor = replace(session.cursor, frontier=targets, interrupt=None)
        await session.resave()
    elif pending is not None:
        await session.answer(value)


def _check_goto(session: Session, goto: Sequence[str] | None) -> tuple[str, ...] | None:
    if goto is None:
        return None
    targets = (goto,) if isinstance(goto, str) else tuple(goto)
    unknown = [t for t in targets if t not in session.spec.nodes and t != END]
    if unknown or not targets:
        known = ", ".join(session.spec.nodes)
        raise SessionError(
            f"resume goto names no node of the graph: {unknown or 'nothing'} (its nodes: {known})"
        )
    return tuple(t for t in targets if t != END)
