"""Two versions of the code, alternately, on the same machine: `bench/run.py` for each, N pairs.

    .venv/bin/python bench/ab.py --old 0e573fe --pairs 3 -- --scale nation --worker --no-naive --reruns 3 --keep /tmp/bnation
    .venv/bin/python bench/ab.py --old HEAD~3 --new HEAD -- --workbooks 1000 --worker --no-naive --keep /tmp/b1000

This machine's speed swings by a third within minutes (docs/performance.md, "Machine and noise"), so
a figure measured before a change and one measured after it say little. This runs the benchmark for
the old revision and the new one in turn (old, new, then new, old, ...: a drift of the machine hits
both alike), each in its own checkout, and prints each figure per run with the median of each side.

--old (and --new, default: this working tree as it is) name git revisions; each is checked out in a
temporary git worktree that uses this repository's `.venv` (the pinned dependencies; a revision that
pins other versions is not comparable this way) and is removed at the end. Both sides are measured by
the same harness, this working tree's `bench/` (copied over each checkout's: a figure must not move
because the way it is measured did, e.g. the memory sampling that slowed the timed runs before
`bench/run.py` moved it to a run of its own); the pipeline's code is each side's. The arguments after `--`
go to `bench/run.py` as they are; give `--keep DIR` so that both sides read the same workbooks (the
first run writes them). Asserts nothing; no network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (label, how to read it from a run's JSON): the figures compared
FIGURES = [
    ("first run, wall (s)", lambda d: d["cli"]["wall_s"]),
    ("first run, CPU (s)", lambda d: d["cli"]["cpu_s"]),
    ("first run, start-up (s)", lambda d: d["cli"].get("startup_s")),
    ("first run, inside Dagster (s)", lambda d: d["cli"].get("in_runs_s")),
    ("process tree peak (MiB)", lambda d: (d.get("cli_memory") or d["cli"]).get("tree_peak_mib")),
    ("one workbook, wall (s)", lambda d: d["cli_one"]["wall_s"]),
    ("re-runs, median wall (s)", lambda d: statistics.median(r["wall_s"] for r in d.get("cli_reruns") or [d["cli_rerun"]])),
    # CPU time moves less with the host's speed than wall time (docs/performance.md, "Machine and noise")
    ("re-runs, median CPU (s)", lambda d: statistics.median(r["cpu_s"] for r in d.get("cli_reruns") or [d["cli_rerun"]])),
    ("calamine floor (ms per workbook)", lambda d: 1000 * d["calamine_floor_s"] / d["workbooks_total"]),
]


def figures_of(run: dict) -> dict[str, float | None]:
    """{label: value} of one run's JSON (None where the run lacks the figure)."""
    out: dict[str, float | None] = {}
    for label, read in FIGURES:
        try:
            value = read(run)
        except (KeyError, TypeError, ZeroDivisionError, statistics.StatisticsError):
            value = None
        out[label] = None if value is None else float(value)
    return out


def compare(old: list[dict], new: list[dict]) -> list[tuple[str, list, list, float | None, float | None, float | None]]:
    """Per figure: (label, old values, new values, old median, new median, new / old)."""
    rows = []
    for label, _ in FIGURES:
        olds = [v for v in (figures_of(r)[label] for r in old) if v is not None]
        news = [v for v in (figures_of(r)[label] for r in new) if v is not None]
        old_median = statistics.median(olds) if olds else None
        new_median = statistics.median(news) if news else None
        ratio = new_median / old_median if old_median and new_median is not None else None
        rows.append((label, olds, news, old_median, new_median, ratio))
    return rows


def table(rows) -> str:
    def shown(values):
        return " / ".join(f"{v:.2f}" for v in values) or "-"

    def one(value):
        return "-" if value is None else f"{value:.2f}"

    lines = ["| figure | old | new | old median | new median | new / old |", "|---|---|---|---|---|---|"]
    for label, olds, news, old_median, new_median, ratio in rows:
        lines.append(f"| {label} | {shown(olds)} | {shown(news)} | {one(old_median)} | {one(new_median)} | {one(ratio)} |")
    return "\n".join(lines)


def _checkout(revision: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(into), revision], check=True, capture_output=True
    )
    venv = REPO / ".venv"
    if venv.exists():
        (into / ".venv").symlink_to(venv)
    for harness in (REPO / "bench").glob("*.py"):  # one harness measures both sides (the module's docstring)
        shutil.copy2(harness, into / "bench" / harness.name)
    return into


def _run(checkout: Path, args: list[str], out: Path) -> dict:
    command = [sys.executable, str(checkout / "bench" / "run.py"), *args, "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"bench/run.py failed in {checkout} (exit {done.returncode}):\n{tail}")
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passed = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the git revision to compare against")
    parser.add_argument("--new", help="the revision compared (default: this working tree as it is)")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side (default 3)")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if "--json" in passed or "--render" in passed:
        parser.error("--json and --render are bench/ab.py's to set, not to pass after --")
    with tempfile.TemporaryDirectory(prefix="cchc-ab-") as tmp:
        work = Path(tmp)
        made: list[Path] = []
        try:
            old = _checkout(args.old, work / "old")
            made.append(old)
            new = REPO
            if args.new:
                new = _checkout(args.new, work / "new")
                made.append(new)
            runs: dict[str, list[dict]] = {"old": [], "new": []}
            for pair in range(args.pairs):
                order = ("old", "new") if pair % 2 == 0 else ("new", "old")
                for side in order:
                    checkout = old if side == "old" else new
                    run = _run(checkout, passed, work / f"{side}-{pair + 1}.json")
                    runs[side].append(run)
                    print(f"pair {pair + 1}, {side}: first run {run['cli']['wall_s']:.1f} s", flush=True)
        except subprocess.CalledProcessError as exc:
            raise SystemExit(f"git worktree failed: {(exc.stderr or b'').decode(errors='replace').strip()}") from None
        finally:
            for checkout in made:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(checkout)], capture_output=True)
            subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
    print(f"\nold: {args.old}; new: {args.new or 'this working tree'}; {args.pairs} pair(s); bench/run.py {' '.join(passed)}\n")
    print(table(compare(runs["old"], runs["new"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
