"""Query templates bound to a schema, and JSONB parameters: what every PostgreSQL module uses."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, LiteralString, cast

from .. import _codec as codec

__all__ = ["jsonb", "q"]


@lru_cache(maxsize=512)
def q(template: str, schema: str) -> Any:
    """``template`` with ``{schema}`` replaced by the quoted schema name (composed once per
    template and schema: the save path uses a handful of templates many times)."""
    from psycopg import sql

    # Templates are this package's constants; only the schema name varies, quoted as an identifier.
    return sql.SQL(cast("LiteralString", template)).format(schema=sql.Identifier(schema))


def jsonb(value: object) -> Any:
    """A JSONB parameter serialized with orjson (the codec's rules)."""
    from psycopg.types.json import Jsonb

    return Jsonb(value, dumps=lambda v: codec.dumps(v).decode())
