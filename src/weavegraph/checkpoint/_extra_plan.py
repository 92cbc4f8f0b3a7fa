"""How a step's ``extra`` is stored, decided without I/O for both backends.

Each step row holds ``(extra_ref, extra_data)``: the whole ``extra`` inline, or a delta over a row
of the session-owned ``extra_log`` (see ``sqlite/_extra`` and ``postgres/_extra``, which only execute
the plans made here). :func:`plan_extra` picks one of:

- :class:`Inline`: ``extra_data`` is the whole ``extra`` (small ones: a base is not worth it);
- :class:`Reuse`: a delta (or NULL: equal) over the current base row;
- :class:`Append`: write a new ``extra_log`` row (a delta over the current base, or a new
  snapshot) and point the step at it; the backend inserts it and passes the new row's id to
  :meth:`Append.row`.

Each plan's ``row`` gives what the backend returns: the step row's two columns and the base to
use next.

A step's delta is taken against the current base, so it carries every key changed since that
base: once it carries mostly keys this step did not change, it is moved into the log as a new base
(so stored bytes stay linear in what was written), and once the log's deltas outweigh the snapshot
they start from, a new snapshot is written (so a load reads about twice the size of its ``extra``
at most).

:func:`legacy_extras` is the pure half of migration 2 (both backends): every step's ``extra``
rebuilt from version 1's chains of deltas over earlier steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from . import _codec as codec

__all__ = [
    "INLINE_EXTRA_MAX",
    "MAX_CHAIN",
    "MIN_CHAIN_BUDGET",
    "STALE_MAX",
    "Append",
    "Base",
    "Inline",
    "LegacyRow",
    "Plan",
    "Reuse",
    "Stored",
    "legacy_extras",
    "plan_extra",
]

# A whole extra up to this size (JSON bytes) is stored in the step row itself.
INLINE_EXTRA_MAX = 256
# A step delta is moved into the log once it carries more than this many bytes of keys that the
# step itself did not change.
STALE_MAX = 512
# The log's deltas over a snapshot may always add up to this much, however small the snapshot.
MIN_CHAIN_BUDGET = 4096
MAX_CHAIN = 64


@dataclass(frozen=True, slots=True)
class Base:
    """The ``extra_log`` row a connection writes a session's step deltas against."""

    uid: str  # the session row's incarnation it belongs to
    ref: int
    extra: Mapping[str, Any]
    snapshot_size: int  # of the snapshot its chain starts from
    chain_bytes: int = 0  # of the log deltas between that snapshot and this row
    chain_len: int = 0
    last_extra: Mapping[str, Any] | None = None  # the last step's extra and its delta
    last_data: bytes | None = None


Stored: TypeAlias = tuple[int | None, bytes | None, "Base | None"]
"""A step row's ``(extra_ref, extra_data)`` and the base to use next (None: none)."""


@dataclass(frozen=True, slots=True)
class Inline:
    """Store ``data`` (the whole extra) in the step row; no base is kept."""

    data: bytes

    def row(self) -> Stored:
        """What the backend returns: the step row's columns, and no base."""
        return None, self.data, None


@dataclass(frozen=True, slots=True)
class Reuse:
    """Store ``(ref, data)`` (a delta over row ``ref``, None: equal); keep ``next_base``."""

    ref: int
    data: bytes | None
    next_base: Base

    def row(self) -> Stored:
        """What the backend returns: the step row's columns and the base to keep."""
        return self.ref, self.data, self.next_base


@dataclass(frozen=True, slots=True)
class Append:
    """Insert ``extra_log`` row ``(base_ref, data)`` and point the step at it (no delta).

    ``base_ref`` None: ``data`` is a new snapshot (the whole extra); else a delta over that row.
    """

    base_ref: int | None
    data: bytes
    uid: str
    extra: Mapping[str, Any]
    snapshot_size: int
    chain_bytes: int
    chain_len: int

    def based_at(self, ref: int) -> Base:
        """The base to use next, once the row was inserted with id ``ref``."""
        return Base(
            uid=self.uid,
            ref=ref,
            extra=self.extra,
            snapshot_size=self.snapshot_size,
            chain_bytes=self.chain_bytes,
            chain_len=self.chain_len,
            last_extra=self.extra,
        )

    def row(self, ref: int) -> Stored:
        """What the backend returns once it inserted the row with id ``ref``."""
        return ref, None, self.based_at(ref)


Plan: TypeAlias = Inline | Reuse | Append


def plan_extra(
    uid: str, base: Base | None, extra: Mapping[str, Any], full: bytes | codec.ExtraJson
) -> Plan:
    """How to store a step of session incarnation ``uid`` whose extra is ``extra`` (JSON ``full``),
    given the current ``base`` (None: none yet, or it is gone). ``full`` is joined into bytes only
    when the plan stores the whole extra."""
    if base is not None:
        previous = base.last_extra
        if extra is previous:  # frozen: the same object has the same delta
            return Reuse(base.ref, base.last_data, base)
        delta = codec.extra_delta(base.extra, extra)
        data = None if delta is None else codec.dumps(delta)
        if data is not None and len(full) <= min(len(data), INLINE_EXTRA_MAX):
            return Inline(codec.json_bytes(full))  # now small: whole is cheaper than a delta
        if data is None or len(data) <= STALE_MAX or not _mostly_stale(previous, extra, data):
            return Reuse(base.ref, data, _with_last(base, extra, data))
        budget = max(base.snapshot_size, MIN_CHAIN_BUDGET)
        if base.chain_len < MAX_CHAIN and base.chain_bytes + len(data) <= budget:
            return Append(
                base_ref=base.ref,
                data=data,
                uid=uid,
                extra=extra,
                snapshot_size=base.snapshot_size,
                chain_bytes=base.chain_bytes + len(data),
                chain_len=base.chain_len + 1,
            )
    if len(full) <= INLINE_EXTRA_MAX:
        return Inline(codec.json_bytes(full))
    snapshot = codec.json_bytes(full)
    return Append(
        None, snapshot, uid, extra, snapshot_size=len(snapshot), chain_bytes=0, chain_len=0
    )


def _with_last(base: Base, extra: Mapping[str, Any], data: bytes | None) -> Base:
    # Spelled out rather than dataclasses.replace: this runs on every save.
    return Base(
        base.uid,
        base.ref,
        base.extra,
        base.snapshot_size,
        base.chain_bytes,
        base.chain_len,
        extra,
        data,
    )


def _mostly_stale(
    previous: Mapping[str, Any] | None, extra: Mapping[str, Any], data: bytes
) -> bool:
    """Whether ``data`` (a delta from the base) carries over STALE_MAX bytes this step did not
    write (its delta from the previous step is much smaller)."""
    if previous is None:
        return True
    written = codec.extra_delta(previous, extra)
    written_size = 0 if written is None else len(codec.dumps(written))
    return len(data) > 2 * written_size + STALE_MAX


# --- migration 2 ------------------------------------------------------------------------------

LegacyRow: TypeAlias = tuple[int, int | None, bytes | None]
"""A version-1 step: ``(step, extra_base, extra_data)``."""


def legacy_extras(rows: Sequence[LegacyRow]) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
    """Each step of ``rows`` (one session, in order) with its frozen ``extra`` under version 1
    (None: its chain was already broken, it stays unloadable)."""
    stored = {step: (base, data) for step, base, data in rows}
    resolved: dict[int, dict[str, Any] | None] = {}
    for step, _, _ in rows:
        extra = _legacy_extra(stored, resolved, step)
        yield step, None if extra is None else codec.decode_extra(extra)


def _legacy_extra(
    stored: Mapping[int, tuple[int | None, bytes | None]],
    resolved: dict[int, dict[str, Any] | None],
    step: int,
) -> dict[str, Any] | None:
    """Step ``step``'s extra under version 1 (deltas chained over earlier steps), memoized."""
    chain: list[int] = []
    current: int | None = step
    while current is not None and current not in resolved:
        found = stored.get(current)
        if found is None or current in chain:
            resolved.update(dict.fromkeys(chain))  # a missing base (or a cycle): unloadable
            return None
        chain.append(current)
        current = found[0]
    extra = None if current is None else resolved[current]
    for link in reversed(chain):
        base, data = stored[link]
        if base is None:
            extra = None if data is None else cast("dict[str, Any]", codec.loads(data))
        elif extra is not None and data is not None:
            extra = codec.apply_delta(dict(extra), cast("Mapping[str, Any]", codec.loads(data)))
        resolved[link] = extra
    return resolved[step]
