"""Data conversions run by PostgreSQL migrations (``Migration.convert``, see ``_schema``).

Version 2 replaces ``steps.extra_base`` (a delta over another step's ``extra``, so deleting that
step by hand broke this one) by ``steps.extra_ref`` (a delta over a row of the session-owned
``extra_log``, see ``_extra``). The conversion rebuilds every step's ``extra`` from the old
chains (``_extra_plan.legacy_extras``, shared with SQLite) and stores it the new way; a step
whose chain was already broken keeps neither column (it stays unloadable, as it was).
"""

from __future__ import annotations

from typing import Any, cast

from .. import _codec as codec
from .._extra_plan import LegacyRow, legacy_extras
from . import _extra as extras
from ._sql import q


async def convert_extra_to_log(conn: Any, schema: str) -> None:
    """Fill ``extra_log`` and ``steps.extra_ref``/``extra_data`` from version 1's chains."""
    cur = await conn.execute(q("SELECT DISTINCT session_id FROM {schema}.steps", schema))
    for (sid,) in cast("list[tuple[str]]", await cur.fetchall()):
        await _convert_session(conn, schema, sid)


async def _convert_session(conn: Any, schema: str, sid: str) -> None:
    cur = await conn.execute(
        q(
            "SELECT step, extra_base, extra_data FROM {schema}.steps WHERE session_id = %s "
            "ORDER BY step",
            schema,
        ),
        (sid,),
    )
    rows: list[LegacyRow] = [
        (step, base, None if data is None else bytes(data))
        for step, base, data in cast("list[LegacyRow]", await cur.fetchall())
    ]
    planned: extras.Base | None = None
    updates: list[tuple[int | None, bytes | None, str, int]] = []
    for step, frozen in legacy_extras(rows):
        if frozen is None:
            updates.append((None, None, sid, step))  # broken before the migration
            continue
        ref, data, planned = await extras.plan(
            conn, schema, sid, "", planned, frozen, codec.dumps(frozen)
        )
        updates.append((ref, data, sid, step))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            q(
                "UPDATE {schema}.steps SET extra_ref = %s, extra_data = %s "
                "WHERE session_id = %s AND step = %s",
                schema,
            ),
            updates,
        )
