import pytest

from weavegraph import FrontierCommand, Message, NodePartial


def test_builders_return_new_partials() -> None:
    base = NodePartial()
    assert base.is_empty()
    updated = base.with_messages([Message.user("a")]).with_extra({"k": 1})
    assert base.is_empty()
    assert updated.messages[0].content == "a"
    assert updated.with_extra({"j": 2}).extra == {"k": 1, "j": 2}
    assert updated.clear_extra_keys(["k"]).extra == {"k": None}


def test_frontier_commands() -> None:
    assert NodePartial().with_frontier_replace(["a"]).frontier == FrontierCommand("replace", ("a",))
    assert NodePartial().with_frontier_append(["b"]).frontier == FrontierCommand("append", ("b",))
    with pytest.raises(ValueError, match="replace"):
        FrontierCommand("jump", ("a",))  # type: ignore[arg-type]


def test_lists_are_normalized_to_tuples() -> None:
    partial = NodePartial(messages=[Message.user("x")])  # type: ignore[arg-type]
    assert isinstance(partial.messages, tuple)
