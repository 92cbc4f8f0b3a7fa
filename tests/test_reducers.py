from typing import Any

import pytest

import weavegraph as wg
from weavegraph import ChannelType, Message, ReducerRegistry
from weavegraph import reducers as r


def test_channel_reducers_are_pure_functions() -> None:
    current = (Message.user("a"),)
    assert r.add_messages(current, [Message.assistant("b")])[1].content == "b"
    assert r.add_messages(current, []) is current
    merged = r.map_merge(r.map_merge({}, {"a": 1, "b": 2}), {"a": None, "c": [3]})  # type: ignore[arg-type]
    assert merged == {"b": 2, "c": [3]}


def test_per_key_reducers() -> None:
    assert r.append(None, 1) == [1]
    assert r.append([1], [2, 3]) == [1, 2, 3]
    assert r.sum_numbers(None, 2) == 2
    assert r.merge_objects({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert r.replace(1, 2) == 2


def test_registry_appends_in_registration_order() -> None:
    def shout(current: object, update: object) -> object:
        return current

    registry = ReducerRegistry().with_reducer(ChannelType.MESSAGES, shout)
    assert registry.for_channel(ChannelType.MESSAGES) == (r.add_messages, shout)
    assert ReducerRegistry.empty().for_channel(ChannelType.EXTRA) == ()


async def test_a_registry_naming_one_channel_keeps_the_others_defaults() -> None:
    import weavegraph as wg

    def first_message_only(current: tuple[object, ...], update: tuple[object, ...]) -> object:
        return current or update[:1]

    registry = ReducerRegistry({ChannelType.MESSAGES: (first_message_only,)})
    assert registry.for_channel(ChannelType.MESSAGES) == (first_message_only,)
    assert registry.for_channel(ChannelType.EXTRA) == (r.map_merge,)
    assert registry.for_channel(ChannelType.ERRORS) == (r.add_errors,)
    assert ReducerRegistry({ChannelType.EXTRA: ()}).for_channel(ChannelType.EXTRA) == ()

    async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(messages=(wg.Message.assistant("ignored"),), extra={"kept": True})

    app = (
        wg.GraphBuilder()
        .add_node("n", node)
        .add_edge(wg.START, "n")
        .add_edge("n", wg.END)
        .with_reducer_registry(registry)
        .compile()
    )
    state = await app.invoke("hello")
    assert [m.content for m in state.messages] == ["hello"]
    assert state.extra == {"kept": True}  # the extra write is not silently dropped


def test_an_unknown_channel_is_refused_listing_the_channels() -> None:
    with pytest.raises(ValueError, match="unknown channel 'mesages': the channels are 'messages'"):
        ReducerRegistry().with_reducer("mesages", r.add_messages)
    with pytest.raises(ValueError, match="unknown channel 'state'"):
        ReducerRegistry({"state": ()})  # type: ignore[dict-item]


def test_add_messages_replaces_by_id_and_removes() -> None:
    from weavegraph.reducers import add_messages

    first = wg.Message("user", "hi", id="1")
    second = wg.Message("assistant", "draft", id="2")
    plain = wg.Message.user("no id")
    current = (first, second, plain)
    edited = wg.Message("assistant", "final", id="2")
    assert add_messages(current, [edited]) == (first, edited, plain)
    assert add_messages(current, [wg.RemoveMessage("1")]) == (second, plain)
    new = wg.Message("user", "again", id="3")
    assert add_messages(current, [plain, new, wg.Message("user", "again!", id="3")]) == (
        first,
        second,
        plain,
        plain,
        wg.Message("user", "again!", id="3"),
    )
    with pytest.raises(ValueError, match="no message with id 'nope'"):
        add_messages(current, [wg.RemoveMessage("nope")])
    with pytest.raises(ValueError, match="needs the id"):
        wg.RemoveMessage("")


async def test_remove_message_in_a_run_and_a_missing_id_is_a_reducer_error() -> None:
    def edit(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
        return wg.NodePartial(messages=[wg.RemoveMessage("a"), wg.Message("user", "B", id="b")])

    app = wg.GraphBuilder().add_node("n", edit).add_edge(wg.START, "n").add_edge("n", wg.END)
    start = wg.VersionedState.new_with_messages(
        [wg.Message("user", "a", id="a"), wg.Message("user", "b", id="b")]
    )
    final = await app.compile().invoke(start)
    assert final.messages == (wg.Message("user", "B", id="b"),)
    with pytest.raises(wg.ReducerError, match="no message with id 'a'"):
        await app.compile().invoke(final)


async def test_many_appends_to_one_key_in_one_step_keep_task_order_and_deletions() -> None:
    def writer(value: Any) -> Any:
        def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
            return wg.NodePartial(extra={"items": value})

        return node

    builder = wg.GraphBuilder().with_extra_reducer("items", wg.reducers.append)
    values: list[Any] = [1, [2, 3], None, 4, [5], {"six": 6}]
    for index, value in enumerate(values):
        builder.add_node(f"w{index}", writer(value)).add_edge(wg.START, f"w{index}")
        builder.add_edge(f"w{index}", wg.END)
    start = wg.VersionedState.builder().with_extra("items", [0]).build()
    final = await builder.compile().invoke(start)
    assert final.extra["items"] == [4, 5, {"six": 6}]  # the None write deleted what came before
    assert wg.reducers.append([1], 2) == [1, 2]
    assert wg.reducers.append(None, [1]) == [1]
