"""The checkpoint package's layout: backends never import each other, shared modules import none."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import weavegraph.checkpoint as checkpoint_pkg

ROOT = Path(checkpoint_pkg.__file__).parent
BACKENDS = ("sqlite", "postgres", "memory")


def _imported(path: Path) -> set[str]:
    """The absolute names of the modules (and imported names) ``path``'s relative imports reach."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = ".".join(("weavegraph.checkpoint", *parts[:-1]))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _backend_of(module: str) -> str | None:
    """Which backend ``weavegraph.checkpoint.<backend>...`` belongs to (None: shared or outside)."""
    prefix = "weavegraph.checkpoint."
    if not module.startswith(prefix):
        return None
    head = module.removeprefix(prefix).split(".", 1)[0]
    return head if head in BACKENDS else None


def test_no_backend_imports_another_and_shared_modules_import_none() -> None:
    problems: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        owner = _backend_of(".".join(("weavegraph.checkpoint", *rel.with_suffix("").parts)))
        if rel.name == "__init__.py" and rel.parent == Path("."):
            continue  # the package re-exports every backend
        for module in _imported(path):
            used = _backend_of(module)
            if used is not None and used != owner:
                problems.append(f"{rel} imports {module}")
    assert problems == []


def test_each_sql_backend_keeps_its_schema_beside_it() -> None:
    for backend in ("sqlite", "postgres"):
        assert (ROOT / backend / "_schema.py").is_file()
        assert (ROOT / backend / "_migrate.py").is_file()
    assert (ROOT / "base.py").is_file()
