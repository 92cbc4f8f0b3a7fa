"""The pure planner of how a step stores its ``extra`` (every branch, no database)."""

from __future__ import annotations

from typing import Any

from weavegraph.checkpoint import _codec as codec
from weavegraph.checkpoint._extra_plan import (
    INLINE_EXTRA_MAX,
    MAX_CHAIN,
    MIN_CHAIN_BUDGET,
    STALE_MAX,
    Append,
    Base,
    Inline,
    Reuse,
    legacy_extras,
    plan_extra,
)
from weavegraph.state import freeze_extra


def _frozen(value: dict[str, Any]) -> Any:
    return freeze_extra(value)


def _plan(base: Base | None, extra: Any) -> Any:
    return plan_extra("uid", base, extra, codec.dumps(extra))


def _base(extra: Any, **fields: Any) -> Base:
    return Base(uid="uid", ref=5, extra=extra, snapshot_size=10_000, **fields)


BIG = _frozen({"big": "x" * 2000, "other": "y" * 900})


def test_no_base_and_a_small_extra_is_stored_inline() -> None:
    extra = _frozen({"k": 1})
    assert _plan(None, extra) == Inline(codec.dumps(extra))


def test_no_base_and_a_large_extra_starts_a_snapshot() -> None:
    full = codec.dumps(BIG)
    plan = _plan(None, BIG)
    assert plan == Append(
        None, full, "uid", BIG, snapshot_size=len(full), chain_bytes=0, chain_len=0
    )
    assert plan.based_at(7) == Base("uid", 7, BIG, len(full), 0, 0, BIG, None)


def test_the_same_object_as_last_time_reuses_the_last_delta_and_base() -> None:
    base = _base(BIG, last_extra=BIG, last_data=b"d")
    plan = _plan(base, BIG)
    assert isinstance(plan, Reuse)
    assert (plan.ref, plan.data, plan.next_base) == (5, b"d", base)
    assert plan.next_base is base


def test_an_extra_equal_to_the_base_is_a_null_delta_and_does_not_change_the_input() -> None:
    base = _base(BIG)
    equal = _frozen({"big": "x" * 2000, "other": "y" * 900})
    plan = _plan(base, equal)
    assert plan == Reuse(5, None, Base("uid", 5, BIG, 10_000, 0, 0, equal, None))
    assert base.last_extra is None  # the planner never mutates what it is given


def test_an_extra_that_became_small_is_stored_whole() -> None:
    small = _frozen({"k": 1})
    assert _plan(_base(BIG), small) == Inline(codec.dumps(small))


def test_a_small_delta_goes_over_the_current_base() -> None:
    extra = _frozen({**BIG, "new": 1})
    data = codec.dumps(codec.extra_delta(BIG, extra))
    assert len(data) <= STALE_MAX
    plan = _plan(_base(BIG), extra)
    assert plan == Reuse(5, data, Base("uid", 5, BIG, 10_000, 0, 0, extra, data))


def test_a_large_delta_this_step_wrote_itself_stays_over_the_base() -> None:
    previous = _frozen({**BIG})
    extra = _frozen({**BIG, "big": "z" * 2000})
    data = codec.dumps(codec.extra_delta(BIG, extra))
    assert len(data) > STALE_MAX
    plan = _plan(_base(BIG, last_extra=previous), extra)
    assert plan == Reuse(5, data, Base("uid", 5, BIG, 10_000, 0, 0, extra, data))


def _stale() -> tuple[Any, Any, bytes]:
    """A previous step that changed a large key, and a step that changes one small key."""
    previous = _frozen({**BIG, "big": "z" * 2000})
    extra = _frozen({**previous, "n": 1})
    return previous, extra, codec.dumps(codec.extra_delta(BIG, extra))


def test_a_mostly_stale_delta_is_appended_to_the_log_as_the_next_base() -> None:
    previous, extra, data = _stale()
    plan = _plan(_base(BIG, chain_bytes=100, chain_len=3, last_extra=previous), extra)
    assert plan == Append(5, data, "uid", extra, 10_000, 100 + len(data), 4)
    assert plan.based_at(9) == Base("uid", 9, extra, 10_000, 100 + len(data), 4, extra, None)


def test_without_a_previous_step_a_large_delta_counts_as_stale() -> None:
    _, extra, data = _stale()
    assert _plan(_base(BIG), extra) == Append(5, data, "uid", extra, 10_000, len(data), 1)


def test_a_chain_at_its_length_limit_starts_a_new_snapshot() -> None:
    previous, extra, _ = _stale()
    full = codec.dumps(extra)
    plan = _plan(_base(BIG, chain_len=MAX_CHAIN, last_extra=previous), extra)
    assert plan == Append(None, full, "uid", extra, len(full), 0, 0)


def test_a_chain_over_its_byte_budget_starts_a_new_snapshot() -> None:
    previous, extra, data = _stale()
    full = codec.dumps(extra)
    base = Base("uid", 5, BIG, 10, MIN_CHAIN_BUDGET - len(data) + 1, 1, previous)
    assert _plan(base, extra) == Append(None, full, "uid", extra, len(full), 0, 0)
    fits = Base("uid", 5, BIG, 10, MIN_CHAIN_BUDGET - len(data), 1, previous)
    assert _plan(fits, extra) == Append(5, data, "uid", extra, 10, MIN_CHAIN_BUDGET, 2)


def test_the_inline_limit_is_inclusive() -> None:
    extra = _frozen({"k": "v" * (INLINE_EXTRA_MAX - len(codec.dumps({"k": ""})))})
    assert len(codec.dumps(extra)) == INLINE_EXTRA_MAX
    assert isinstance(_plan(None, extra), Inline)
    bigger = _frozen({"k": "v" * (INLINE_EXTRA_MAX + 1 - len(codec.dumps({"k": ""})))})
    assert isinstance(_plan(None, bigger), Append)


# --- migration 2 ------------------------------------------------------------------------------


def _blob(value: Any) -> bytes:
    return codec.dumps(value)


def test_legacy_chains_are_rebuilt_and_broken_ones_stay_none() -> None:
    rows = [
        (0, None, _blob({"a": 1})),
        (1, 0, _blob({"set": {"b": 2}, "del": []})),
        (2, 1, None),  # equal to step 1
        (3, 1, _blob({"set": {}, "del": ["a"]})),
        (4, 99, _blob({"set": {"c": 3}, "del": []})),  # its base is gone
        (5, 4, _blob({"set": {"d": 4}, "del": []})),  # over a broken step
        (6, 7, _blob({"set": {}, "del": []})),  # a cycle
        (7, 6, _blob({"set": {}, "del": []})),
        (8, None, None),  # lost before the migration
    ]
    got = dict(legacy_extras(rows))
    assert got == {
        0: {"a": 1},
        1: {"a": 1, "b": 2},
        2: {"a": 1, "b": 2},
        3: {"b": 2},
        4: None,
        5: None,
        6: None,
        7: None,
        8: None,
    }
    assert got[1] == freeze_extra({"a": 1, "b": 2})
    assert type(got[1]) is type(freeze_extra({}))


def test_legacy_steps_come_back_in_the_given_order() -> None:
    rows = [(3, None, _blob({"x": 1})), (1, 3, _blob({"set": {"y": 2}, "del": []}))]
    assert [step for step, _ in legacy_extras(rows)] == [3, 1]
