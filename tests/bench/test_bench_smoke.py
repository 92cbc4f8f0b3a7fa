"""The benchmark scripts must keep working: run them in quick mode and check what they report.

Only the shape of the output is checked, never a time (speed is judged by ``make bench``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
WORKLOADS = [
    "chain100",
    "fanout1000",
    "loop1000",
    "chain100_sqlite",
    "stream_chain100",
    "stream_updates",
    "stream_steps",
    "state_growth",
    "sessions",
    "sessions_pg",
    "large_extra",
    "map_reduce",
    "workers",
]
WEAVEGRAPH_ONLY = {"workers"}
"""Workloads LangGraph has no open-source equivalent of."""

pytestmark = pytest.mark.slow


def workdir_args(path: Path) -> list[str]:
    return ["--workdir", str(path)]


def run_harness(tmp_path: Path, framework: str, *args: str) -> dict[str, Any]:
    results = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "harness.py"),
            "--quick",
            "--framework",
            framework,
            *["--results-dir", str(results)],
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = list(results.glob("*.json"))
    assert len(files) == 1, files
    assert str(files[0]) in proc.stdout
    return json.loads(files[0].read_text())


def check_side(report: dict[str, Any], framework: str) -> None:
    assert report["quick"] is True
    assert report["machine"]["nproc"] >= 1
    assert set(report["workloads"]) == set(WORKLOADS)
    for name, row in report["workloads"].items():
        if framework != "weavegraph" and name in WEAVEGRAPH_ONLY:
            assert framework not in row, (name, row)
            continue
        side = row[framework]
        assert side["failed"] == 0, (name, side)
        assert side["runs"] == 1
        assert side["min"] <= side["median"] <= side["max"], (name, side)
        assert side["median"] > 0
        assert side["rss_peak_kb"] > 0
    growth = report["workloads"]["state_growth"][framework]
    assert growth["payload_bytes"] == 30 * 1024
    assert growth["db_bytes"] > 0
    assert growth["first_us"] > 0
    assert growth["last_us"] > 0
    assert report["workloads"]["fanout1000"][framework]["compile_s"] > 0
    for name in ("stream_updates", "stream_steps"):
        stream = report["workloads"][name][framework]
        assert stream["received"] + stream["dropped"] >= stream["size"], (name, stream)
    assert report["workloads"]["chain100_sqlite"][framework]["checkpoints"] >= 10


def test_weavegraph_side_runs_every_workload_in_quick_mode(tmp_path: Path) -> None:
    report = run_harness(tmp_path, "weavegraph")
    check_side(report, "weavegraph")
    workers = report["workloads"]["workers"]["weavegraph"]
    for count in (1, 2, 4):  # every worker count ran the queued sessions
        assert workers[f"sessions_per_s_{count}w"] > 0, workers
        assert workers[f"commits_per_s_{count}w"] > workers[f"sessions_per_s_{count}w"], workers
    assert workers["takeover_p95_s"] >= workers["takeover_p50_s"] > 0, workers
    assert workers["takeover_p50_leases"] > 0, workers
    assert all(run["framework"] == "weavegraph" for run in report["runs"])


@pytest.mark.skipif(
    importlib.util.find_spec("langgraph") is None,
    reason="langgraph is only installed in .bench-venv (make bench), not in the test venv",
)
def test_langgraph_side_runs_every_workload_in_quick_mode(tmp_path: Path) -> None:
    check_side(run_harness(tmp_path, "langgraph"), "langgraph")


def test_a_weavegraph_only_workload_is_reported_when_both_frameworks_run(tmp_path: Path) -> None:
    report = run_harness(tmp_path, "both", "--only", "workers")
    row = report["workloads"]["workers"]
    assert set(row) == {"weavegraph"}  # no LangGraph side, and no ratio
    assert row["weavegraph"]["failed"] == 0


def test_workload_script_prints_one_json_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "wg_workloads.py"),
            "loop1000",
            "--size",
            "5",
            *workdir_args(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["framework"] == "weavegraph"
    assert record["workload"] == "loop1000"
    assert record["size"] == 5
    assert record["unit"] == "us/step"
    assert record["value"] > 0
    assert record["rss_peak_kb"] >= record["rss_import_kb"] > 0


def test_unknown_workload_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "harness.py"),
            "--only",
            "nope",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown workload" in proc.stderr
