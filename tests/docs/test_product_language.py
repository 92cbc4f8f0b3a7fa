"""User-facing text speaks of the product only: never of the design documents it was built from.

README, docs, examples, the CHANGELOG and everything under ``src/`` (docstrings, CLI help, error
messages, the studio's files) are read as users read them.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# "SPEC" as a word, "the seed" / "seed's" (the original notes); "seed" alone is a legitimate word
# (random seeds), so only these forms are refused.
FORBIDDEN = re.compile(r"\bSPEC\b|\b[Tt]he seed\b|\b[Ss]eed's\b")
SUFFIXES = {".py", ".md", ".js", ".html", ".css", ".json", ".toml", ".txt"}


def user_facing_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for folder in ("docs", "examples", "src"):
        files.extend(p for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES)
    return files


def test_user_facing_text_names_only_the_product() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in user_facing_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not found, "user-facing text mentions internal documents:\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for() -> None:
    assert FORBIDDEN.search("as SPEC §7 says")
    assert FORBIDDEN.search("in the seed's syntax")
    assert not FORBIDDEN.search("a random seed for hypothesis; app.spec; the specification")
