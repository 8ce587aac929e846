"""The raw folder after years of history: what each run and each sensor tick pay to look at it
(issue #8, "ten years of national history stay usable"), in one process.

    .venv/bin/python bench/folder.py                          # 40 quarters x 4,000 workbooks (a nation after ten years)
    .venv/bin/python bench/folder.py --quarters 40 --workbooks 150   # a province after ten years
    .venv/bin/python bench/folder.py --keep /tmp/bfolder      # keep (and reuse) the folder and its index

Writes `--distinct` synthetic workbooks per quarter (bench/synth.py; the quarters end this year) and fills each
quarter's folder with `--workbooks` hard links to them (a national folder after ten years is 160,000
files: writing them would take an hour; the look at a folder does not read a file it knows). The
first look hashes every file and fills the folder index (not a figure). Then, per round, on the same
folder: the listing alone; a look with nothing changed (`ingest.index_entries`: list, stat, compare
with the index); the selection of one quarter's workbooks from it (what the raw step takes) and the
folder's quarters (what `run` asks for); a look after one workbook changed (read again, the index
written); a file-sensor tick with nothing new (the look, its state read, the comparison) and the
state it writes. Prints the fastest round and the median, and what the sensor's cursor holds
against what a cursor of every file's path held (Dagster keeps each tick's cursor for good).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402  (bench/synth.py)


def build_folder(root: Path, quarters: int, per_quarter: int, distinct: int, seed: int) -> Path:
    """root/raw with `quarters` folders (CCHC_FIRST_YEAR-Q1 onwards) of `per_quarter` hard links each, to that
    quarter's `distinct` workbooks written once under root/sources. Reused when already there."""
    raw = root / "raw"
    done = root / "built.json"
    wanted = {"quarters": quarters, "per_quarter": per_quarter, "distinct": distinct, "seed": seed, "from": synth.FIRST_YEAR}
    if done.exists() and json.loads(done.read_text()) == wanted:
        return raw
    agencies = synth.agencies_for(distinct)
    catalog = synth.write_catalog(REPO / "catalog", root / "catalog", agencies)
    reports = synth.make_reports(agencies, catalog, root / "sources", range(quarters), quarters, seed)
    by_quarter: dict[int, list[Path]] = {}
    for report in reports:  # each quarter's own workbooks (their periods), linked into its folder
        by_quarter.setdefault(report.index, []).append(synth.write_report(report))
    for _, sources in sorted(by_quarter.items()):
        folder = raw / sources[0].parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_quarter):
            target = folder / f"A{i:05d}_{folder.name}.xlsx"
            if not target.exists():
                os.link(sources[i % len(sources)], target)
    done.write_text(json.dumps(wanted))
    return raw


def timed(rounds: int, work) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarters", type=int, default=40)
    parser.add_argument("--workbooks", type=int, default=4000, help="workbooks per quarter folder")
    parser.add_argument("--distinct", type=int, default=10, help="distinct workbooks per quarter the folder's files link to")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the folder here instead of a temporary folder")
    args = parser.parse_args()
    if min(args.quarters, args.workbooks, args.distinct, args.rounds) < 1:
        parser.error("--quarters, --workbooks, --distinct and --rounds must be at least 1")

    if "CCHC_FIRST_YEAR" not in os.environ:  # the folders end this year, as a history does
        first_year = dt.date.today().year - -(-args.quarters // 4) + 1
        os.environ["CCHC_FIRST_YEAR"] = str(first_year)
        synth.FIRST_YEAR = first_year

    from pipelines import ingest
    from pipelines.sensors import keep_seen, landed_files, load_seen, seen_of

    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="cchc-folder-") as tmp:
        root = args.keep or Path(tmp)
        started = time.perf_counter()
        raw = build_folder(root, args.quarters, args.workbooks, args.distinct, args.seed)
        cache, state = root / "work" / "parsed", root / "work" / "sensors"
        built = time.perf_counter() - started
        started = time.perf_counter()
        entries = ingest.index_entries(raw, cache)
        first = time.perf_counter() - started
        files = len(entries)
        quarter = max(entries.partitions() - {ingest.UNASSIGNED})
        print(f"{files:,} workbooks in {args.quarters} quarter folders ({args.distinct} distinct contents each)")
        print(f"  folder built in {built:.1f} s, first look (every file hashed, the index filled) {first:.1f} s")

        figures: dict[str, tuple[float, float]] = {}
        figures["listing alone"] = timed(args.rounds, lambda: ingest._scan_runs(raw))
        figures["look, nothing changed"] = timed(args.rounds, lambda: ingest.index_entries(raw, cache))
        figures["one quarter's workbooks from it"] = timed(args.rounds, lambda: list(entries.items([quarter, ingest.UNASSIGNED])))
        figures["the folder's quarters"] = timed(args.rounds, lambda: ingest.index_entries(raw, cache).partitions())
        changed = next(iter(entries))
        bump = [0]

        def look_after_a_change() -> None:
            bump[0] += 1
            stat = os.stat(changed)
            os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000 * bump[0]))
            ingest.index_entries(raw, cache)

        figures["look after one workbook changed"] = timed(args.rounds, look_after_a_change)
        cursor = keep_seen(state, seen_of(ingest.index_entries(raw, cache)), None)

        def tick() -> None:
            found = landed_files(ingest.index_entries(raw, cache, workers=1), load_seen(state, cursor))
            assert not found, f"{len(found)} workbooks taken as new"

        figures["sensor tick, nothing new"] = timed(args.rounds, tick)
        print(f"  {'':34} {'fastest':>10} {'median':>10}")
        for label, (fastest, median) in figures.items():
            print(f"  {label:34} {fastest * 1000:7.1f} ms {median * 1000:7.1f} ms")
        every_path = len(json.dumps({name: f"{e.mtime_ns}:{e.size}" for name, e in entries.items()}))
        kept = (state / f"raw-folder-sensor.{cursor}.pickle").stat().st_size
        print(
            f"  the sensor's cursor: {len(cursor)} characters (its state in the work folder: {kept / 1e6:.1f} MB);"
            f" a cursor of every file's path would hold {every_path / 1e6:.1f} MB, kept with each tick"
        )


if __name__ == "__main__":
    main()
