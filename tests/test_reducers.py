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
