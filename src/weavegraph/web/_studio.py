"""The studio's actions on a session: cancel its run, answer it, edit its state, fork it, and
read any of its steps.

Each goes through the core (``AppRunner``, the server's runs: this process or the queue); nothing
here steps a session or decides a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..app import App
from ..checkpoint import Checkpoint, Checkpointer
from ..errors import SessionGraphMismatch
from ..queue import Multitask
from ..runtime.plan import cursor_of, missing_nodes
from ..sessions import AppRunner
from ..types import END
from ._body import (
    ApiError,
    busy,
    check_keys,
    not_found,
    partial_of,
    read_json,
    session_id_of,
    storable,
)
from ._redact import public_state
from ._requests import RunRequest, Runs

_RESUME_KEYS = ("value", "update", "goto")
_FORK_KEYS = ("step", "new_id")


class Serving(Protocol):
    """What the actions need from the server: its graph, run manager and checkpointer."""

    app: App
    context: Any

    @property
    def runs(self) -> Runs: ...

    @property
    def checkpointer(self) -> Checkpointer: ...


class StudioActions:
    """The handlers of ``/api/runs/{id}/cancel`` and ``/api/sessions/{id}/...``."""

    def __init__(self, serving: Serving) -> None:
        self._serving = serving

    async def cancel(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        if not await self._serving.runs.cancel(session_id):
            await self._latest(session_id)  # 404 for an unknown session
            raise ApiError(
                409, f"session {session_id!r} has no run in progress", "weavegraph::web::idle"
            )
        return JSONResponse({"session_id": session_id, "cancelled": True}, status_code=202)

    async def resume(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        body = await read_json(request)
        check_keys(body, _RESUME_KEYS, "resume")
        if "value" not in body:
            raise ApiError(400, 'resume needs "value" (null continues a session at a pause)')
        value = storable(body["value"], '"value"')
        update = partial_of(body["update"], '"update"') if body.get("update") else None
        goto = self._goto(body.get("goto"))
        latest = await self._idle(session_id)
        if goto is None and value is not None and cursor_of(latest).interrupt is None:
            raise ApiError(
                409,
                f"session {session_id!r} is not waiting for an answer",
                "weavegraph::web::not_waiting",
            )
        accepted = await self._serving.runs.submit(
            session_id,
            RunRequest(answer=value, update=update, goto=goto),
            multitask=Multitask.REJECT,
            key=None,
        )
        return JSONResponse(accepted.to_json_value(), status_code=202)

    async def fork(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        body = await read_json(request)
        check_keys(body, _FORK_KEYS, "fork")
        step = body.get("step")
        if type(step) is not int or step < 0:
            raise ApiError(400, f'fork needs "step", an int >= 0, got {step!r}')
        new_id = session_id_of(body.get("new_id"))
        await self._checkpoint(session_id, step)
        if await self._serving.checkpointer.load_latest(new_id) is not None:
            raise ApiError(409, f"session {new_id!r} already exists", "weavegraph::web::exists")
        async with self._runner() as runner:
            init = await runner.fork(session_id, step, new_id)
        return JSONResponse(
            {"session_id": new_id, "forked_from": session_id, "step": init.step},
            status_code=201,
        )

    async def edit_state(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        partial = partial_of(await read_json(request), "state update")
        if partial.is_empty():
            raise ApiError(400, 'the update changes nothing: give "messages", "extra" or "errors"')
        await self._idle(session_id)
        status, answer = await self._serving.runs.edit(session_id, partial)
        return JSONResponse(answer, status_code=status)

    async def step(self, request: Request) -> Response:
        session_id = session_id_of(request.path_params["session_id"])
        checkpoint = await self._checkpoint(session_id, request.path_params["step"])
        return Response(orjson.dumps(_step_json(checkpoint)), media_type="application/json")

    # --- checks ------------------------------------------------------------------------------

    async def _latest(self, session_id: str) -> Checkpoint:
        latest = await self._serving.checkpointer.load_latest(session_id)
        if latest is None:
            raise not_found(session_id)
        return latest

    async def _checkpoint(self, session_id: str, step: int) -> Checkpoint:
        """The checkpoint of ``step``; 404 for an unknown session or step."""
        store = self._serving.checkpointer
        checkpoint = await store.load(session_id, step) if step < 2**63 else None
        if checkpoint is None:
            await self._latest(session_id)
            raise ApiError(
                404,
                f"session {session_id!r} has no step {step} (or it was pruned)",
                "weavegraph::web::no_step",
            )
        return checkpoint

    async def _idle(self, session_id: str) -> Checkpoint:
        """The session's latest checkpoint; 409 while it runs or when it needs another graph."""
        if await self._serving.runs.busy(session_id):
            raise busy(session_id)
        latest = await self._latest(session_id)
        unknown = missing_nodes(self._serving.app.spec, latest.frontier)
        if unknown:
            mismatch = SessionGraphMismatch(session_id, unknown)
            raise ApiError(409, mismatch.message, "weavegraph::web::other_graph")
        return latest

    def _goto(self, value: object) -> Sequence[str] | None:
        if value is None:
            return None
        nodes = self._serving.app.spec.nodes
        items: list[Any] = list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]
        if not items or not all(isinstance(v, str) and (v in nodes or v == END) for v in items):
            raise ApiError(
                400, f'"goto" must list nodes of the graph ({", ".join(nodes)}), got {value!r}'
            )
        return [str(v) for v in items]

    def _runner(self) -> AppRunner:
        return AppRunner(
            self._serving.app, self._serving.checkpointer, context=self._serving.context
        )


def _step_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "step": checkpoint.step,
        "state": public_state(checkpoint.state),
        "ran_nodes": list(checkpoint.ran_nodes),
        "skipped_nodes": list(checkpoint.skipped_nodes),
        "updated_channels": list(checkpoint.updated_channels),
        "frontier": list(checkpoint.frontier),
        "created_at": checkpoint.created_at.isoformat(),
    }
