"""The chaos suite's negative control: ``weavegraph worker chaos_unfenced:long_app`` is a worker
with the fence switched off (test-only: imported by no other code).

Importing this module replaces the claim check every fenced write makes (``_claim.check``) and
the heartbeat (``_claim.heartbeat``) in this process by versions that never compare the claim
token: a worker woken after its claim was taken over goes on committing under its old epoch.
The chaos checks must then fail.
"""

from __future__ import annotations

from typing import Any

import queue_flows

from weavegraph.checkpoint.postgres import _claim
from weavegraph.checkpoint.postgres._claim import Claim
from weavegraph.checkpoint.postgres._sql import q


async def _check_without_token(conn: Any, schema: str, claim: Claim, step: int | None) -> int:
    row = await (
        await conn.execute(
            q("SELECT latest_step FROM {schema}.sessions WHERE id = %s FOR UPDATE", schema),
            (claim.session_id,),
        )
    ).fetchone()
    return int(row[0])


async def _heartbeat_without_token(conn: Any, schema: str, claim: Claim) -> bool:
    await conn.execute(
        q(
            "UPDATE {schema}.sessions SET lease_until = now() + make_interval(secs => %s) "
            "WHERE id = %s",
            schema,
        ),
        (claim.lease_s, claim.session_id),
    )
    return True


_verify: Any = getattr(_claim, "verify", None)
if _verify is not None:  # the fence as a pure check of the locked row: give it our own token

    def _verify_without_token(
        claim: Claim, token: str | None, latest: int, step: int | None
    ) -> None:
        _verify(claim, claim.token, latest, step)

    _claim.verify = _verify_without_token  # pyright: ignore[reportAttributeAccessIssue]
else:
    _claim.check = _check_without_token
_claim.heartbeat = _heartbeat_without_token

long_app = queue_flows.build_long_app
