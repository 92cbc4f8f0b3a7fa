import pydantic
import pytest

from weavegraph import NodePartial, StateKey, TypedSlotError, VersionedState


class Plan(pydantic.BaseModel):
    steps: list[str]
    budget: int = 0


PLAN = StateKey("plan", Plan)


def test_typed_value_round_trips_through_extra_as_json() -> None:
    state = VersionedState.builder().with_typed_extra(PLAN, Plan(steps=["a"], budget=3)).build()
    assert state.extra["plan@v1"] == {"steps": ["a"], "budget": 3}
    assert state.snapshot().get_typed(PLAN) == Plan(steps=["a"], budget=3)
    assert VersionedState.from_json_value(state.to_json_value()).require_typed(PLAN).budget == 3


def test_missing_slot_reads_none_and_require_raises() -> None:
    state = VersionedState()
    assert state.get_typed(PLAN) is None
    with pytest.raises(TypedSlotError, match="required"):
        state.require_typed(PLAN)


def test_invalid_value_is_refused_when_written() -> None:
    with pytest.raises(TypedSlotError, match="invalid value"):
        NodePartial().with_typed_extra(StateKey("n", int), "not a number")  # type: ignore[arg-type]


def test_reading_another_schema_version_is_a_clear_error() -> None:
    state = VersionedState.builder().with_typed_extra(PLAN, Plan(steps=[])).build()
    with pytest.raises(TypedSlotError, match="found schema version 1"):
        state.get_typed(StateKey("plan", Plan, version=2))


def test_state_key_validates_its_own_definition() -> None:
    with pytest.raises(ValueError, match="'@'"):
        StateKey("a@b", int)
    with pytest.raises(ValueError, match="version"):
        StateKey("a", int, version=0)
    with pytest.raises(ValueError, match=r"name must be a non-empty str .* got 5"):
        StateKey(5, int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version must be an int >= 1, got '2'"):
        StateKey("a", int, version="2")  # type: ignore[arg-type]
