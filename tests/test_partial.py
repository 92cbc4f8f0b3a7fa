import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from weavegraph import ErrorEvent, FrontierCommand, Message, NodePartial, StateKey


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
    partial = NodePartial(messages=[Message.user("x")])
    assert partial.messages == (Message.user("x"),)
    assert isinstance(partial.messages, tuple)
    errors = NodePartial(errors=[ErrorEvent(message="e")]).errors
    assert errors == (ErrorEvent(message="e"),)
    assert isinstance(errors, tuple)


def test_clear_extra_keys_takes_one_key_an_iterable_or_state_keys() -> None:
    plan = StateKey("plan", int)
    assert NodePartial().clear_extra_keys("abc").extra == {"abc": None}
    assert NodePartial().clear_extra_keys(plan).extra == {plan.storage_key: None}
    mixed = NodePartial().clear_extra_keys(["a", plan, "b"]).extra
    assert mixed == {"a": None, plan.storage_key: None, "b": None}
    assert NodePartial().clear_extra_keys(k for k in ("x", "y")).extra == {"x": None, "y": None}


USER_NODE = """
import weavegraph as wg

PLAN = wg.StateKey("plan", int)


async def node(snapshot: wg.StateSnapshot, ctx: wg.NodeContext) -> wg.NodePartial:
    errors = [wg.ErrorEvent(message="x", node_id=ctx.node_id)]
    partial = wg.NodePartial(messages=[wg.Message.user("x")], errors=errors)
    first: tuple[wg.Message, ...] = partial.messages
    assert first
    return partial.clear_extra_keys("abc").clear_extra_keys([PLAN, "k"])
"""


@pytest.mark.slow
def test_node_partial_with_lists_type_checks_strictly(tmp_path: Path) -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.skip("pyright is not installed in this environment")
    (tmp_path / "node.py").write_text(USER_NODE, encoding="utf-8")
    (tmp_path / "pyrightconfig.json").write_text(
        json.dumps({"strict": ["."], "pythonVersion": "3.11"}), encoding="utf-8"
    )
    result = subprocess.run(
        [pyright, "--outputjson", "--pythonpath", sys.executable, "node.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    assert report["generalDiagnostics"] == [], report["generalDiagnostics"]


def test_from_json_value_reads_the_web_and_cli_update_shape() -> None:
    partial = NodePartial.from_json_value(
        {
            "messages": [{"role": "user", "content": "more"}],
            "extra": {"score": 9, "gone": None},
            "errors": [{"message": "checked by hand", "scope": "review"}],
        }
    )
    assert partial.messages == (Message.user("more"),)
    assert partial.extra == {"score": 9, "gone": None}
    assert [e.message for e in partial.errors] == ["checked by hand"]
    assert NodePartial.from_json_value({}).is_empty()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "an update is a JSON object, got list"),
        ({"extras": {}}, "unknown update key(s) ['extras']"),
        ({"extra": [1]}, '"extra" must be an object'),
        ({"messages": "hi"}, '"messages" must be a list'),
        ({"messages": ["hi"]}, '"messages"[0] must be an object'),
        ({"messages": [{"role": "user"}]}, "\"messages\"[0] lacks 'content'"),
        ({"errors": [{"message": 3}]}, '"errors"[0]'),
    ],
)
def test_from_json_value_names_what_is_wrong(value: object, fragment: str) -> None:
    from weavegraph.errors import StateError

    with pytest.raises(StateError) as caught:
        NodePartial.from_json_value(value)
    assert fragment in str(caught.value)
