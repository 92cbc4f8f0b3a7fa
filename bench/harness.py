"""Run the SPEC section 8 workloads on weavegraph and LangGraph side by side and print one table.

Every repetition of every (framework, workload) pair runs in a fresh subprocess, so peak RSS
(``ru_maxrss`` of that child, from ``os.wait4``) belongs to that workload alone. Repetitions
alternate between the frameworks so slow drift of the machine hits both alike. Results are also
written as JSON to ``bench/results/<timestamp>.json``.

Usage: ``python bench/harness.py [--quick] [--only W[,W]] [--reps N] [--framework F]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import WORKLOADS, Workload
from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
SCRIPTS = {"weavegraph": BENCH_DIR / "wg_workloads.py", "langgraph": BENCH_DIR / "lg_workloads.py"}
FRAMEWORKS = ("weavegraph", "langgraph")
DEFAULT_REPS = 5
SLOW_REPS = {"state_growth": 3, "sessions": 3, "sessions_pg": 3, "workers": 1}
"""state_growth on LangGraph writes ~0.5 GB per repetition, 1,000 LangGraph sessions take over a
minute, and workers runs 3,000 sessions in worker processes: fewer repetitions keep a run short."""
CHILD_TIMEOUT_S = 300


@dataclass(slots=True)
class Run:
    """One subprocess: its JSON line (or the error) and its peak RSS as the parent saw it."""

    framework: str
    workload: str
    rep: int
    ok: bool
    result: dict[str, Any] = field(default_factory=dict[str, Any])
    rss_peak_kb: int = 0
    wall_s: float = 0.0
    error: str = ""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="weavegraph vs LangGraph benchmarks (SPEC §8)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition (smoke)")
    parser.add_argument("--only", default="", help="comma-separated workloads (default: all)")
    parser.add_argument(
        "--reps", type=int, default=None, help=f"repetitions (default {DEFAULT_REPS})"
    )
    parser.add_argument("--framework", choices=(*FRAMEWORKS, "both"), default="both")
    parser.add_argument("--size", type=int, default=None, help="override every workload's size")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--no-table", action="store_true", help="only write the JSON file")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="print an earlier results file as Markdown tables (for docs/PERFORMANCE.md) and exit",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    args.workloads = names
    args.frameworks = FRAMEWORKS if args.framework == "both" else (args.framework,)
    return args


def child_env() -> dict[str, str]:
    """The parent's environment minus anything that would redirect weavegraph's database."""
    env = dict(os.environ)
    for name in ("WEAVEGRAPH_SQLITE_URL", "SQLITE_DB_NAME", "WEAVEGRAPH_POSTGRES_URL"):
        env.pop(name, None)
    env["PYTHONHASHSEED"] = "0"
    return env


def run_child(framework: str, workload: str, size: int, rep: int, workdir: Path) -> Run:
    """One fresh interpreter for one measurement; ``wait4`` gives that child's own peak RSS."""
    cmd = [sys.executable, str(SCRIPTS[framework]), workload, "--size", str(size)]
    cmd += ["--workdir", str(workdir)]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(), cwd=workdir)
        try:
            _pid, status, usage = _wait4(proc.pid, CHILD_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            proc.wait()
            return Run(framework, workload, rep, ok=False, error="timeout")
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    run = Run(framework, workload, rep, ok=False, rss_peak_kb=usage.ru_maxrss)
    run.wall_s = time.perf_counter() - started
    lines = stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        run.error = (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return run
    run.result = json.loads(lines[-1])
    run.ok = True
    return run


def _wait4(pid: int, timeout_s: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        got_pid, status, usage = os.wait4(pid, os.WNOHANG)
        if got_pid == pid:
            return got_pid, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError(pid)
        time.sleep(0.005)


def run_all(args: argparse.Namespace, console: Console) -> list[Run]:
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="weavegraph-bench-") as tmp:
        for name in args.workloads:
            spec = WORKLOADS[name]
            size = args.size or (spec.quick_size if args.quick else spec.size)
            reps = 1 if args.quick else (args.reps or SLOW_REPS.get(name, DEFAULT_REPS))
            for rep in range(reps):
                for framework in (f for f in args.frameworks if f in spec.frameworks):
                    workdir = Path(tmp) / f"{framework}-{name}-{rep}"
                    workdir.mkdir()
                    run = run_child(framework, name, size, rep, workdir)
                    runs.append(run)
                    status = "ok" if run.ok else f"FAILED: {run.error}"
                    console.log(f"{name:<16} {framework:<10} rep {rep + 1}/{reps} {status}")
    return runs


def _values(runs: Sequence[Run], key: str = "value") -> list[float]:
    return [float(r.result[key]) for r in runs if r.ok and key in r.result]


def summarize(runs: Sequence[Run], workload: str, framework: str) -> dict[str, Any]:
    """Median/min/max of the main metric plus medians of every other numeric field."""
    mine = [r for r in runs if r.workload == workload and r.framework == framework]
    ok = [r for r in mine if r.ok]
    summary: dict[str, Any] = {"runs": len(mine), "failed": len(mine) - len(ok)}
    if not ok:
        summary["error"] = next((r.error for r in mine if r.error), "not run")
        return summary
    values = _values(ok)
    summary.update(median=statistics.median(values), min=min(values), max=max(values))
    summary["rss_peak_kb"] = statistics.median([r.rss_peak_kb for r in ok])
    numeric = {k for r in ok for k, v in r.result.items() if isinstance(v, int | float)}
    for key in sorted(numeric - {"value", "pid", "size", "rss_peak_kb"}):
        summary[key] = statistics.median(_values(ok, key))
    summary["size"] = ok[0].result.get("size")
    return summary


def speedup(spec: Workload, wg: dict[str, Any], lg: dict[str, Any]) -> float | None:
    """How many times better weavegraph is (>1 means weavegraph wins)."""
    if "median" not in wg or "median" not in lg or not wg["median"] or not lg["median"]:
        return None
    if spec.higher_is_better:
        return wg["median"] / lg["median"]
    return lg["median"] / wg["median"]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _cell(summary: dict[str, Any]) -> str:
    if not summary:  # a workload this framework has no equivalent of
        return "-"
    if "median" not in summary:
        return f"[red]{summary.get('error', 'n/a')[:40]}[/red]"
    return f"{_fmt(summary['median'])} ({_fmt(summary['min'])}-{_fmt(summary['max'])})"


def _mb(kb: float | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f}"


def main_table(report: dict[str, Any]) -> Table:
    table = Table(title="weavegraph vs LangGraph: median (min-max) over repetitions")
    for col in (
        "workload",
        "unit",
        "weavegraph",
        "langgraph",
        "wg better by",
        "target",
        "RSS MB wg/lg",
    ):
        table.add_column(col, justify="left" if col in ("workload", "unit") else "right")
    for name, row in _in_order(report["workloads"]):
        wg, lg = row.get("weavegraph", {}), row.get("langgraph", {})
        ratio = row.get("speedup")
        table.add_row(
            name,
            WORKLOADS[name].unit,
            _cell(wg),
            _cell(lg),
            "-" if ratio is None else f"{ratio:.1f}x",
            _verdict(WORKLOADS[name], ratio, report["quick"]),
            f"{_mb(wg.get('rss_peak_kb'))} / {_mb(lg.get('rss_peak_kb'))}",
        )
    return table


def _verdict(spec: Workload, ratio: float | None, quick: bool) -> str:
    if spec.target is None or ratio is None:
        return "-"
    if quick:  # targets are for the full sizes; tiny runs are dominated by fixed costs
        return "(quick)"
    return f">={spec.target:g}x " + ("met" if ratio >= spec.target else "MISSED")


def details_table(report: dict[str, Any]) -> Table:
    """Compile time, memory added by the run, checkpoints and state growth: medians per side."""
    table = Table(title="details (medians)")
    for col in ("workload", "measure", "weavegraph", "langgraph"):
        table.add_column(col, justify="left" if col in ("workload", "measure") else "right")
    rows = [
        ("chain100", "compile ms", "compile_s", 1e3),
        ("fanout1000", "compile ms", "compile_s", 1e3),
        ("fanout1000", "RSS added by run MB", "rss_added_kb", 1 / 1024),
        ("map_reduce", "RSS added by run MB", "rss_added_kb", 1 / 1024),
        ("chain100_sqlite", "checkpoints written", "checkpoints", 1),
        ("chain100_sqlite", "bytes on disk", "db_bytes", 1),
        ("stream_updates", "events dropped", "dropped", 1),
        ("state_growth", "bytes on disk", "db_bytes", 1),
        ("state_growth", "payload bytes", "payload_bytes", 1),
        ("state_growth", "disk / payload", "disk_ratio", 1),
        ("state_growth", "first-100 step us", "first_us", 1),
        ("state_growth", "last-100 step us", "last_us", 1),
        ("large_extra", "bytes written per step", "bytes_per_step", 1),
        ("large_extra", "bytes on disk", "db_bytes", 1),
        *WORKER_ROWS,
    ]
    for workload, label, key, scale in rows:
        row = report["workloads"].get(workload)
        if row is None:
            continue
        cells = []
        for framework in FRAMEWORKS:
            value = row.get(framework, {}).get(key)
            cells.append("-" if value is None else _fmt(float(value) * scale))
        if cells != ["-", "-"]:
            table.add_row(workload, label, *cells)
    growth = report["workloads"].get("state_growth", {})
    ratios = [_ratio(growth.get(fw, {})) for fw in FRAMEWORKS]
    if ratios != ["-", "-"]:
        table.add_row("state_growth", "last-100 / first-100", *ratios)
    return table


WORKER_ROWS = [
    *(
        ("workers", f"{measure}, {n} worker{'s' if n > 1 else ''}", f"{key}_{n}w", 1)
        for measure, key in (("sessions/s", "sessions_per_s"), ("step commits/s", "commits_per_s"))
        for n in (1, 2, 4)
    ),
    ("workers", "takeover after kill -9, p50 s", "takeover_p50_s", 1),
    ("workers", "takeover after kill -9, p95 s", "takeover_p95_s", 1),
    ("workers", "takeover p50 / lease", "takeover_p50_leases", 1),
    ("workers", "takeover p95 / lease", "takeover_p95_leases", 1),
    ("workers", "lease s", "lease_s", 1),
]
"""The workers workload's numbers per worker count and its takeover (weavegraph only)."""


def _ratio(side: dict[str, Any]) -> str:
    first, last = side.get("first_us"), side.get("last_us")
    return f"{last / first:.2f}" if first and last else "-"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def framework_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for dist in (
        "weavegraph",
        "langgraph",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
    ):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


def measure_floor() -> dict[str, float]:
    """Bare asyncio task and SQLite commit cost here (bench/floor.py), for scale; {} on failure."""
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "floor.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if proc.returncode == 0 and lines else {}


def build_report(
    args: argparse.Namespace, runs: Sequence[Run], floor: dict[str, float]
) -> dict[str, Any]:
    workloads: dict[str, Any] = {}
    for name in args.workloads:
        sides = [fw for fw in args.frameworks if fw in WORKLOADS[name].frameworks]
        row: dict[str, Any] = {fw: summarize(runs, name, fw) for fw in sides}
        for summary in row.values():
            if "rss_import_kb" in summary and "rss_peak_kb" in summary:
                summary["rss_added_kb"] = summary["rss_peak_kb"] - summary["rss_import_kb"]
        if len(sides) == 2:
            row["speedup"] = speedup(WORKLOADS[name], row["weavegraph"], row["langgraph"])
        workloads[name] = row
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "machine": machine_info(),
        "versions": framework_versions(),
        "floor": floor,
        "workloads": workloads,
        "runs": [asdict(r) for r in runs],
    }


def markdown_report(report: dict[str, Any]) -> str:
    """The main and details tables of a results file, as GitHub Markdown."""
    lines = [
        "| workload | unit | weavegraph median (min-max) | LangGraph median (min-max) "
        "| weavegraph better by | target | peak RSS MB wg / lg |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in _in_order(report["workloads"]):
        wg, lg = row.get("weavegraph", {}), row.get("langgraph", {})
        ratio = row.get("speedup")
        cells = [
            name,
            WORKLOADS[name].unit,
            _plain_cell(wg),
            _plain_cell(lg),
            "-" if ratio is None else f"{ratio:.1f}x",
            _verdict(WORKLOADS[name], ratio, report["quick"]),
            f"{_mb(wg.get('rss_peak_kb'))} / {_mb(lg.get('rss_peak_kb'))}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| workload | measure | weavegraph | LangGraph |", "|---|---|---|---|"]
    table = details_table(report)
    columns = [list(col.cells) for col in table.columns]
    for cells in zip(*columns, strict=True):
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    machine = report["machine"]
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['nproc']} CPUs, Python {machine['python']} "
        f"({machine['platform']}); versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + ".",
    ]
    floor = report.get("floor") or {}
    if floor:
        lines.append(
            f"Floor on the same machine: a bare asyncio task {floor['asyncio_task_us']:.1f} us, "
            f"a small SQLite WAL commit {floor['sqlite_wal_commit_us']:.1f} us."
        )
    return "\n".join(lines)


def _in_order(workloads: dict[str, Any]) -> list[tuple[str, Any]]:
    """Rows in SPEC order (a results file stores them sorted by name)."""
    return [(name, workloads[name]) for name in WORKLOADS if name in workloads]


def _plain_cell(summary: dict[str, Any]) -> str:
    if not summary:
        return "-"
    if "median" not in summary:
        return "n/a"
    return f"{_fmt(summary['median'])} ({_fmt(summary['min'])}-{_fmt(summary['max'])})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown is not None:
        print(markdown_report(json.loads(args.markdown.read_text())))
        return 0
    console = Console(stderr=True)
    floor = {} if args.quick else measure_floor()
    runs = run_all(args, console)
    report = build_report(args, runs, floor)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if not args.no_table:
        out = Console(width=140)
        out.print(main_table(report))
        out.print(details_table(report))
        machine = report["machine"]
        out.print(
            f"{machine['cpu']}, {machine['nproc']} CPUs, Python {machine['python']}; "
            f"versions {report['versions']}"
        )
        if floor:
            out.print(
                f"floor here: bare asyncio task {floor['asyncio_task_us']:.1f} us, "
                f"SQLite WAL commit {floor['sqlite_wal_commit_us']:.1f} us"
            )
    print(f"results: {path}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
