"""Reading a session's past for ``AppRunner``: step numbers, why a step cannot be loaded, and the
history a fork starts with."""

from __future__ import annotations

from dataclasses import replace

from .checkpoint import Checkpointer
from .errors import SessionError, SessionNotFound, WeavegraphError

__all__ = ["check_step", "copy_history", "missing_step"]


def check_step(step: object) -> None:
    """A step number is an int >= 0 (SQLite would match "1" or 1.0 and hand the text back)."""
    if type(step) is not int or step < 0:
        raise SessionError(f"a step is an int >= 0, got {step!r}")


async def missing_step(
    checkpointer: Checkpointer, session_id: str, step: int, *, live: bool
) -> WeavegraphError:
    """Why ``step`` cannot be loaded: no session (and none ``live`` in the runner), a step that
    never was, or one whose base checkpoint was deleted (history still lists it, but its state
    cannot be rebuilt)."""
    history = await checkpointer.history(session_id)
    if not history and not live:
        return SessionNotFound(session_id)
    if any(info.step == step for info in history):
        return SessionError(
            f"step {step} of session {session_id!r} cannot be rebuilt: the earlier checkpoint "
            "its state builds on was deleted",
            help="Pick a later step from the session's history, or fork from the latest.",
        )
    return SessionError(f"session {session_id!r} has no step {step}")


async def copy_history(
    checkpointer: Checkpointer, session_id: str, step: int, new_session_id: str
) -> int:
    """Give a fork the source's history before ``step`` (the fork's own step is saved after);
    the last step copied (-1: none)."""
    copied = -1
    for info in await checkpointer.history(session_id):
        if info.step >= step:
            continue
        earlier = await checkpointer.load(session_id, info.step)
        if earlier is not None:
            await checkpointer.save(replace(earlier, session_id=new_session_id), builds_on=copied)
            copied = earlier.step
    return copied
