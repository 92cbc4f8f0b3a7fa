import pytest

from weavegraph import ErrorEvent, Message, NonJsonValue, StateError, VersionedState


def test_constructors_start_every_channel_at_version_one() -> None:
    state = VersionedState.new_with_user_message("hi")
    assert state.messages == (Message.user("hi"),)
    assert dict(state.versions) == {"messages": 1, "extra": 1, "errors": 1}
    built = (
        VersionedState.builder()
        .with_system_message("sys")
        .with_user_message("u")
        .with_extra("k", {"v": [1]})
        .build()
    )
    assert [m.role for m in built.messages] == ["system", "user"]
    assert built.extra == {"k": {"v": [1]}}
    assert VersionedState.new_with_messages([Message.user("a")]).messages[0].content == "a"


def test_the_builder_keeps_messages_in_order_and_collects_errors() -> None:
    tool = Message.tool("result")
    problem = ErrorEvent(message="late", node_id="n", step=2)
    built = (
        VersionedState.builder()
        .with_user_message("q")
        .with_assistant_message("a")
        .with_message(tool)
        .with_error(problem)
        .build()
    )
    assert [(m.role, m.content) for m in built.messages] == [
        ("user", "q"),
        ("assistant", "a"),
        ("tool", "result"),
    ]
    assert built.errors == (problem,)
    assert dict(built.versions) == {"messages": 1, "extra": 1, "errors": 1}


def test_snapshot_shares_values_without_copying() -> None:
    state = VersionedState.builder().with_extra("big", list(range(1000))).build()
    snapshot = state.snapshot()
    assert snapshot.extra is state.extra
    assert snapshot.messages is state.messages
    with pytest.raises(TypeError):
        snapshot.extra["big"].append(1)


def test_non_json_extra_is_refused_naming_the_key() -> None:
    with pytest.raises(NonJsonValue, match="'when'"):
        VersionedState.builder().with_extra("when", {1, 2}).build()


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"messages": [{"content": "no role"}]}, "messages[0] has no 'role'"),
        (
            {"messages": [{"role": "user", "content": "x"}, 7]},
            "messages[1] must be an object, got int",
        ),
        ({"messages": "hello"}, "messages must be a list, got str"),
        ({"errors": [{"scope": "node"}]}, "errors[0] has no 'message'"),
        (
            {"errors": [{"message": None}]},
            "errors[0]: ErrorEvent.message must be a string, got NoneType",
        ),
        ({"extra": ["a"]}, "extra must be an object, got list"),
        ({"versions": 3}, "versions must be an object, got int"),
    ],
)
def test_from_json_value_names_malformed_input(value: object, named: str) -> None:
    with pytest.raises(StateError) as raised:
        VersionedState.from_json_value(value)  # type: ignore[arg-type]
    assert str(raised.value) == f"malformed state JSON: {named}"


def test_from_json_value_refuses_what_is_not_an_object() -> None:
    with pytest.raises(StateError, match="must be an object, got list"):
        VersionedState.from_json_value([])  # type: ignore[arg-type]
    with pytest.raises(StateError, match="versions"):
        VersionedState(versions={"messages": 1})


def test_from_json_value_refuses_unknown_top_level_keys_naming_them() -> None:
    with pytest.raises(StateError, match="junk"):
        VersionedState.from_json_value({"junk": 1})
    with pytest.raises(StateError, match="extras"):
        VersionedState.from_json_value({"extras": {"a": 1}, "messages": []})
    assert VersionedState.from_json_value({}).extra == {}
