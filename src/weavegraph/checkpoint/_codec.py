"""Serialization shared by the SQL backends: orjson only (never pickle), plus the delta helpers.

Nothing read from a database is evaluated: blobs are parsed as JSON and rebuilt through the state
classes' own validating constructors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar, cast

import orjson

from .._iso import iso
from ..errors import CheckpointError
from ..state import ErrorEvent, FrozenDict, Message, freeze_extra, freeze_json
from .base import Checkpoint

T = TypeVar("T")

SQLITE_TIME = "%Y-%m-%d %H:%M:%S"


def dumps(value: object) -> bytes:
    """JSON bytes; a CheckpointError (never a silent loss) when the value cannot be stored."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise CheckpointError(f"cannot serialize checkpoint data: {exc}") from exc


WHOLE_EXTRA_MAX = 4096
"""An extra whose JSON is at most this long is encoded whole (one call is cheapest), not by key."""


class ExtraJson:
    """An ``extra``'s JSON: whole when small, else one encoded ``"key":value`` part per key.

    :meth:`of` re-encodes only the keys whose value is not the very object encoded last time
    (values are frozen and shared between states), so a step that changed one small key next to a
    large untouched value costs what it changed; ``len()`` is the whole JSON's size, and the parts
    are joined only when :meth:`data` is asked for (a snapshot, a small extra stored whole).
    """

    __slots__ = ("_parts", "_size", "_whole", "extra")

    def __init__(
        self,
        extra: Mapping[str, Any],
        parts: dict[str, tuple[object, bytes]],
        whole: bytes | None = None,
    ) -> None:
        self.extra = extra
        self._parts = parts
        self._whole = whole
        if whole is not None:
            self._size = len(whole)
        else:
            self._size = 1 + sum(len(part) + 1 for _, part in parts.values()) + (not parts)

    @classmethod
    def of(cls, extra: Mapping[str, Any], previous: ExtraJson | None = None) -> ExtraJson:
        """The JSON of ``extra``, reusing ``previous``'s parts for values it encoded."""
        if previous is None or previous._whole is not None:
            whole = dumps(extra)
            if len(whole) <= WHOLE_EXTRA_MAX:
                return cls(extra, {}, whole)
        old = previous._parts if previous is not None else {}
        parts: dict[str, tuple[object, bytes]] = {}
        for key, value in extra.items():
            hit = old.get(key)
            if hit is not None and hit[0] is value:
                parts[key] = hit
            else:
                parts[key] = (value, dumps(key) + b":" + dumps(value))
        return cls(extra, parts)

    def __len__(self) -> int:
        return self._size

    def data(self) -> bytes:
        """The whole JSON object."""
        if self._whole is not None:
            return self._whole
        return b"{" + b",".join(part for _, part in self._parts.values()) + b"}"


def json_bytes(blob: bytes | ExtraJson) -> bytes:
    """The bytes of an encoded extra, whichever form it is in."""
    return blob if isinstance(blob, bytes) else blob.data()


def loads(blob: bytes | str) -> Any:
    try:
        return orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"corrupt checkpoint data in the database: {exc}") from exc


def encode_messages(messages: Iterable[Message]) -> list[bytes]:
    return [dumps(message.to_json_value()) for message in messages]


def decode_messages(blobs: Iterable[bytes]) -> tuple[Message, ...]:
    return tuple(Message.from_json_value(loads(blob)) for blob in blobs)


def encode_errors(errors: Iterable[ErrorEvent]) -> list[bytes]:
    return [dumps(error.to_json_value()) for error in errors]


def decode_errors(blobs: Iterable[bytes]) -> tuple[ErrorEvent, ...]:
    return tuple(ErrorEvent.from_json_value(loads(blob)) for blob in blobs)


def decode_extra(value: Mapping[str, Any]) -> FrozenDict:
    return freeze_extra(value)


def decode_cursor(blob: bytes | str) -> FrozenDict:
    return freeze_cursor(loads(blob))


def freeze_cursor(value: object) -> FrozenDict:
    cursor = freeze_json(value)
    if not isinstance(cursor, FrozenDict):
        raise CheckpointError("corrupt checkpoint cursor: not a JSON object")
    return cursor


def names(blob: bytes | str) -> tuple[str, ...]:
    """A JSON array of node or channel names."""
    return tuple(str(item) for item in cast("list[object]", loads(blob)))


class StepJson(NamedTuple):
    """A checkpoint's step fields as JSON, encoded once for its step row and its head."""

    ran: bytes
    skipped: bytes
    updated: bytes
    frontier: bytes
    versions: bytes
    cursor: bytes

    @classmethod
    def of(cls, cp: Checkpoint) -> StepJson:
        return cls(
            dumps(cp.ran_nodes), dumps(cp.skipped_nodes), dumps(cp.updated_channels),
            dumps(cp.frontier), dumps(cp.state.versions), dumps(cp.cursor),
        )  # fmt: skip


_HEAD = (
    b'{"step":%d,"created_at":"%s","frontier":%s,"ran":%s,"skipped":%s,"updated":%s,'
    b'"versions":%s,"cursor":%s,"messages":[%d,%d],"errors":[%d,%d]'
)


def head_fields(cp: Checkpoint, msg_start: int, err_start: int, parts: StepJson) -> bytes:
    """:func:`encode_head` without its closing brace (a backend may add fields)."""
    state = cp.state
    return _HEAD % (
        cp.step, iso(utc(cp.created_at)).encode(), parts.frontier, parts.ran, parts.skipped,
        parts.updated, parts.versions, parts.cursor, msg_start, len(state.messages), err_start,
        len(state.errors),
    )  # fmt: skip


def encode_head(
    cp: Checkpoint, msg_start: int, err_start: int, parts: StepJson | None = None
) -> bytes:
    """A session's latest checkpoint minus its channels (``[start, count]`` windows into the log);
    ``parts``: its step fields, when already encoded for the step row."""
    return head_fields(cp, msg_start, err_start, parts or StepJson.of(cp)) + b"}"


def extra_delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """What turns ``old`` into ``new``: ``{"set": {...}, "del": [...]}``; None when they are equal.

    Values are frozen and shared between states, so an identity check settles most keys at once.
    """
    if old is new:
        return None
    changed = {k: v for k, v in new.items() if k not in old or (old[k] is not v and old[k] != v)}
    removed = [k for k in old if k not in new]
    if not changed and not removed:
        return None
    return {"set": changed, "del": removed}


def apply_delta(base: dict[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """Apply an :func:`extra_delta` result to ``base`` (mutated and returned)."""
    for key in cast("list[str]", delta["del"]):
        base.pop(key, None)
    base.update(cast("dict[str, Any]", delta["set"]))
    return base


def plan_append(
    previous: Sequence[T] | None, previous_start: int, current: Sequence[T], log_next: int
) -> tuple[int, int]:
    """Where ``current`` lives in an append-only log: ``(window_start, first_new_index)``.

    When ``current`` extends ``previous`` (the window ending at the log's end), only
    ``current[first_new_index:]`` is appended and the window keeps its start; otherwise the whole
    channel is appended at the end of the log (old rows stay for the steps that use them).
    """
    if previous is not None and previous_start + len(previous) == log_next:
        count = len(previous)
        if len(current) >= count and tuple(current[:count]) == tuple(previous):
            return previous_start, count
    return log_next, 0


def to_sqlite_time(moment: datetime) -> str:
    """SQLite's own UTC text form, so ``datetime('now', '-30 days')`` comparisons work."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(SQLITE_TIME)


def from_sqlite_time(text: str) -> datetime:
    """SQLite's UTC text form back to a datetime; a fraction of a second is kept."""
    moment = datetime.strptime(text[:19], SQLITE_TIME).replace(tzinfo=UTC)
    if len(text) > 20 and text[19] == ".":
        moment = moment.replace(microsecond=int(text[20:26].ljust(6, "0")))
    return moment


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- what a backend remembers between saves (shared by the SQL backends) -----------------------


@dataclass(slots=True, kw_only=True)
class HeadCache:
    """What this process knows about a session's latest checkpoint (to append only what is new).

    ``uid`` identifies the session row's incarnation (a deleted and re-created session differs).
    """

    uid: str
    step: int
    messages: tuple[Message, ...]
    msg_start: int
    errors: tuple[ErrorEvent, ...]
    err_start: int
    extra: Mapping[str, Any]
    # Unused since schema version 2 (a step's extra builds on the session's extra_log, never on
    # another step row); kept so the backends' constructors stay unchanged.
    extra_step: int | None = None
