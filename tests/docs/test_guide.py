"""Every Python block of docs/GUIDE.md, docs/FROM_LANGGRAPH.md and docs/OPERATIONS.md runs, as a reader would run it.

A block runs with top-level ``await`` allowed, in a fresh namespace and a temporary working
directory. An HTML comment on the line before a block changes that:

- ``<!-- guide: continue -->`` runs it in the namespace of the block before (same event loop);
- ``<!-- guide: requires=NAME -->`` skips it (with the reason) until ``weavegraph.NAME`` exists;
- ``<!-- guide: skip=REASON -->`` skips it: only for blocks that need a network.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import weavegraph as wg

ROOT = Path(__file__).resolve().parents[2]
DOCS = (
    ROOT / "docs" / "GUIDE.md",
    ROOT / "docs" / "FROM_LANGGRAPH.md",
    ROOT / "docs" / "OPERATIONS.md",
)

_BLOCK = re.compile(
    r"(?:<!-- guide: (?P<marker>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.DOTALL
)
_HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


@dataclass
class Block:
    line: int
    code: str
    marker: str = ""


@dataclass
class Chain:
    """A block and the blocks that continue it: run in order, in one namespace."""

    doc: str
    heading: str
    blocks: list[Block] = field(default_factory=list[Block])

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.blocks[0].line}:{self.heading}"


def _chains(path: Path) -> list[Chain]:
    text = path.read_text(encoding="utf-8")
    chains: list[Chain] = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        marker = (match["marker"] or "").strip()
        block = Block(line, match["code"], marker)
        if marker == "continue":
            assert chains, f"{path.name}:{line}: a continued block needs a block before it"
            chains[-1].blocks.append(block)
            continue
        headings = _HEADING.findall(text, 0, match.start())
        chains.append(Chain(path.name, headings[-1] if headings else "", [block]))
    return chains


def _all_chains() -> list[Chain]:
    return [chain for path in DOCS for chain in _chains(path)]


def _skip_reason(chain: Chain) -> str | None:
    for block in chain.blocks:
        if block.marker.startswith("requires="):
            name = block.marker.removeprefix("requires=")
            if not hasattr(wg, name):
                return f"needs weavegraph.{name}, which does not exist yet"
        elif block.marker.startswith("skip="):
            return block.marker.removeprefix("skip=")
        elif block.marker not in ("", "continue"):
            raise AssertionError(f"{chain.doc}:{block.line}: unknown marker {block.marker!r}")
    return None


def test_the_docs_have_blocks_and_every_skip_says_why() -> None:
    chains = _all_chains()
    assert len(chains) >= 20
    for chain in chains:
        _skip_reason(chain)  # raises on an unknown marker


@pytest.mark.parametrize("chain", _all_chains(), ids=lambda chain: chain.id)
async def test_doc_block_runs(
    chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = _skip_reason(chain)
    if reason is not None:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    for name in ("WEAVEGRAPH_SQLITE_URL", "SQLITE_DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    namespace: dict[str, Any] = {"__name__": "guide"}
    for block in chain.blocks:
        source = "\n" * block.line + block.code  # tracebacks point at the line in the doc
        code = compile(
            source,
            f"docs/{chain.doc}",
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,  # not this file's `from __future__ import annotations`
        )
        result = eval(code, namespace)
        if result is not None:
            await result
    assert os.getcwd() == str(tmp_path)
