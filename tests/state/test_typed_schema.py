"""Typed state schemas: GraphBuilder(state=Schema), snapshot.state, NodePartial(update=...)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import (
    Annotated,
    Any,
    NotRequired,  # pydantic needs these on Python < 3.12
)

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import weavegraph as wg


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


class Address(BaseModel):
    city: str
    zip: str = ""


class Profile(BaseModel):
    name: str = ""
    seen: list[str] = []
    notes: Annotated[list[str], wg.reducers.append] = []
    when: datetime | None = None
    mood: Mood = Mood.HAPPY
    home: Address | None = None
    count: int = Field(default=0, ge=0)


@dataclass
class Counter:
    total: Annotated[int, wg.reducers.sum_numbers] = 0
    label: str = "start"


class Doc(TypedDict):
    title: str
    tags: NotRequired[Annotated[list[str], wg.reducers.append]]


def _one_node_graph(schema: type, node: Any) -> wg.App:
    builder = wg.GraphBuilder(state=schema).add_node("n", node)
    return builder.add_edge(wg.START, "n").add_edge("n", wg.END).compile()


async def test_pydantic_schema_fields_round_trip_typed() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    async def write(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        assert snapshot.state.name == "ada"
        return wg.NodePartial(
            update={"when": when, "mood": Mood.SAD, "home": Address(city="Paris"), "count": 2}
        )

    app = _one_node_graph(Profile, write)
    final = await app.invoke(wg.VersionedState.builder().with_state(Profile(name="ada")).build())
    state = final.state
    assert isinstance(state, Profile)
    assert state == Profile(
        name="ada", when=when, mood=Mood.SAD, home=Address(city="Paris"), count=2
    )
    assert state.when == when
    assert state.mood is Mood.SAD
    assert state.home == Address(city="Paris")
    # each field lives in extra under its own name, in its JSON form
    assert final.extra["when"] == "2026-01-02T03:04:05Z"
    assert final.extra["mood"] == "sad"
    assert final.extra["home"] == {"city": "Paris", "zip": ""}


async def test_snapshot_state_is_frozen() -> None:
    seen: list[Any] = []

    async def mutate(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> None:
        state = snapshot.state
        seen.append(state)
        with pytest.raises(Exception, match="frozen"):
            state.name = "x"
        with pytest.raises(TypeError, match="immutable"):
            state.seen.append("x")

    app = _one_node_graph(Profile, mutate)
    await app.invoke(wg.VersionedState.builder().with_state(Profile(seen=["a"])).build())
    assert seen[0].seen == ["a"]


async def test_dataclass_schema_with_a_summing_reducer_and_frozen_instances() -> None:
    def add(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial().with_update(total=5, label="added")

    builder = wg.GraphBuilder(state=Counter)
    for name in ("a", "b"):
        builder.add_node(name, add).add_edge(wg.START, name).add_edge(name, wg.END)
    final = await builder.compile().invoke(
        wg.VersionedState.builder().with_state(Counter(1)).build()
    )
    assert final.state == Counter(total=11, label="added")
    with pytest.raises(dataclasses.FrozenInstanceError):
        final.state.total = 0


async def test_typeddict_schema_appends_items_and_lists() -> None:
    def tag(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"tags": "one"})

    def more(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"tags": ["two", "three"]})

    builder = wg.GraphBuilder(state=Doc).add_node("a", tag).add_node("b", more)
    builder.add_edge(wg.START, "a").add_edge(wg.START, "b")
    app = builder.add_edge("a", wg.END).add_edge("b", wg.END).compile()
    final = await app.invoke(wg.VersionedState.builder().with_state(Doc(title="t")).build())
    assert final.state == {"title": "t", "tags": ["one", "two", "three"]}


async def test_a_write_that_fails_validation_fails_the_node_naming_the_field() -> None:
    def bad(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"count": -1})

    with pytest.raises(wg.NodeRunError) as info:
        await _one_node_graph(Profile, bad).invoke(wg.VersionedState())
    assert info.value.node == "n"
    cause = info.value.__cause__
    assert isinstance(cause, wg.StateFieldError)
    assert cause.field == "count"
    assert cause.node == "n"
    assert "'count'" in str(info.value)
    assert "greater than or equal to 0" in str(info.value)


async def test_an_unknown_field_is_refused_naming_it_and_the_fields() -> None:
    def typo(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"nmae": "x"})

    with pytest.raises(wg.NodeRunError) as info:
        await _one_node_graph(Profile, typo).invoke(wg.VersionedState())
    cause = info.value.__cause__
    assert isinstance(cause, wg.StateFieldError)
    assert cause.field == "nmae"
    assert "Profile has no such field" in str(cause)
    assert "name, seen" in str(cause)


async def test_appended_items_are_validated_one_by_one() -> None:
    def bad(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"notes": 3})

    with pytest.raises(wg.NodeRunError) as info:
        await _one_node_graph(Profile, bad).invoke(wg.VersionedState())
    assert isinstance(info.value.__cause__, wg.StateFieldError)


async def test_none_resets_a_field_to_its_default() -> None:
    def clear(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"name": None})

    start = wg.VersionedState.builder().with_state(Profile(name="ada")).build()
    final = await _one_node_graph(Profile, clear).invoke(start)
    assert final.state.name == ""
    assert "name" not in final.extra


async def test_routers_read_the_typed_state() -> None:
    def count(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"count": snapshot.state.count + 1})

    def again(snapshot: wg.StateSnapshot) -> str:
        return "count" if snapshot.state.count < 3 else wg.END

    app = (
        wg.GraphBuilder(state=Profile)
        .add_node("count", count)
        .add_edge(wg.START, "count")
        .add_conditional_edge("count", again, targets=["count", wg.END])
        .compile()
    )
    assert (await app.invoke(wg.VersionedState())).state.count == 3


def test_a_state_without_a_schema_says_how_to_get_one() -> None:
    with pytest.raises(wg.StateError, match="GraphBuilder\\(state=Schema\\)"):
        _ = wg.VersionedState().state


def test_a_stored_value_that_no_longer_validates_names_the_field() -> None:
    state = wg.VersionedState.builder().with_state(Profile()).with_extra("count", "many").build()
    with pytest.raises(wg.StateFieldError, match="'count'"):
        _ = state.state


def test_only_models_typeddicts_and_dataclasses_are_schemas() -> None:
    with pytest.raises(TypeError, match="pydantic model, TypedDict or dataclass"):
        wg.GraphBuilder(state=int)
    with pytest.raises(TypeError, match="pydantic model, TypedDict or dataclass"):
        wg.GraphBuilder(state=Profile())  # type: ignore[arg-type]


def test_with_state_validates_the_instance() -> None:
    state = wg.VersionedState.builder().with_state(Counter(total=2)).build()
    assert state.extra == {"total": 2, "label": "start"}
    assert state.state == Counter(total=2)


async def _round_trip(checkpointer: wg.Checkpointer) -> None:
    when = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)

    def write(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(update={"when": when, "mood": Mood.SAD, "home": {"city": "Oslo"}})

    app = _one_node_graph(Profile, write)
    async with wg.AppRunner(app, checkpointer) as runner:
        await runner.create_session("s", wg.VersionedState())
        await runner.run_until_complete("s")
    async with wg.AppRunner(app, checkpointer) as reopened:
        await reopened.create_session("s")
        state = (await reopened.get_state("s")).state
        assert state.when == when
        assert state.mood is Mood.SAD
        assert state.home == Address(city="Oslo")
        if not isinstance(checkpointer, wg.InMemoryCheckpointer):
            assert (await reopened.state_at("s", 1)).state.when == when


async def test_typed_fields_round_trip_through_memory_and_sqlite(tmp_path: Path) -> None:
    await _round_trip(wg.InMemoryCheckpointer())
    sqlite = await wg.SQLiteCheckpointer.connect(f"sqlite://{tmp_path / 'typed.db'}")
    try:
        await _round_trip(sqlite)
    finally:
        await sqlite.close()


async def test_typed_fields_round_trip_through_postgres(
    postgres_url: str, postgres_schema: str
) -> None:
    checkpointer = await wg.PostgresCheckpointer.connect(postgres_url, schema=postgres_schema)
    try:
        await _round_trip(checkpointer)
    finally:
        await checkpointer.close()


def test_graph_metadata_lists_the_schema_and_its_reducers() -> None:
    app = _one_node_graph(Profile, lambda snapshot, ctx: None)
    meta = app.graph_metadata()
    assert meta["state_schema"]["fields"][:3] == ["name", "seen", "notes"]
    assert meta["extra_reducers"] == {"notes": "weavegraph.reducers.append"}
