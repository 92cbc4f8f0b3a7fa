import pytest

from weavegraph import ErrorEvent, Message, Role


def test_roles_compare_as_strings_and_custom_roles_are_allowed() -> None:
    assert Message.assistant("hi").role == "assistant"
    assert Message.with_role("user", "x").role is Role.USER
    assert Message.with_role("critic", "x").role == "critic"
    assert [Message.user("a").role, Message.system("b").role, Message.tool("c").role] == [
        "user",
        "system",
        "tool",
    ]


def test_message_is_frozen_and_metadata_is_frozen() -> None:
    message = Message("user", "hello", metadata={"lang": "en"})
    with pytest.raises(AttributeError):
        message.content = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        message.metadata["lang"] = "fr"  # type: ignore[index]


@pytest.mark.parametrize(("role", "content"), [("", "x"), ("user", 3)])
def test_message_rejects_bad_fields(role: str, content: object) -> None:
    with pytest.raises(TypeError):
        Message(role, content)  # type: ignore[arg-type]


def test_message_json_round_trip_keeps_optional_fields() -> None:
    message = Message("tool", "42", id="m1", name="calc", metadata={"ms": 3})
    assert Message.from_json_value(message.to_json_value()) == message
    assert Message.user("x").to_json_value() == {"role": "user", "content": "x"}


def test_error_event_from_exception_and_json_round_trip() -> None:
    error = ErrorEvent.from_exception(KeyError("k"), node_id="n", step=2, traceback="tb")
    assert error.error_type == "KeyError"
    assert error.node_id == "n"
    assert ErrorEvent.from_json_value(error.to_json_value()) == error


@pytest.mark.parametrize("message", [None, 3, b"bytes"])
def test_error_event_needs_a_string_message(message: object) -> None:
    with pytest.raises(TypeError, match=r"ErrorEvent\.message must be a string"):
        ErrorEvent(message=message)  # type: ignore[arg-type]
