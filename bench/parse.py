"""The reader's parse cost per workbook against the calamine floor (issue #8, lever 3), in one process.

    .venv/bin/python bench/parse.py                     # 200 synthetic workbooks in a temporary folder
    .venv/bin/python bench/parse.py --workbooks 500 --rounds 15
    .venv/bin/python bench/parse.py --raw /tmp/b1000/raw # workbooks already written (e.g. run.py --keep)

Per round, in turn on the same files: the floor (python_calamine: open, every sheet's values) and
`pipelines.workbook.read_workbook` (checks, calamine, and reading the form into records). Prints
wall and CPU milliseconds per workbook (the fastest round and the median) and the ratio to the
floor. The machine may be shared: compare the two within one run, and take the fastest round.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402  (bench/synth.py)


def write_workbooks(root: Path, count: int, seed: int) -> list[Path]:
    agencies = synth.agencies_for(count)
    catalog = synth.write_catalog(REPO / "catalog", root / "catalog", agencies)
    reports = synth.make_reports(agencies, catalog, root / "raw", range(1), 4, seed)
    return [synth.write_report(report) for report in reports]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workbooks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--raw", type=Path, help="read the .xlsx files under this folder instead of writing new ones")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import python_calamine

    from pipelines.workbook import read_workbook

    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="cchc-parse-") as tmp:
        paths = sorted(args.raw.rglob("*.xlsx")) if args.raw else write_workbooks(Path(tmp), args.workbooks, args.seed)

        def floor() -> None:
            for path in paths:
                book = python_calamine.CalamineWorkbook.from_path(str(path))
                for name in book.sheet_names:
                    book.get_sheet_by_name(name).to_python()

        def reader() -> None:
            for path in paths:
                read_workbook(path)

        timings: dict[str, list[tuple[float, float]]] = {"calamine floor": [], "read_workbook": []}
        for _ in range(args.rounds):
            for name, run in (("calamine floor", floor), ("read_workbook", reader)):
                wall, cpu = time.perf_counter(), time.process_time()
                run()
                timings[name].append(
                    ((time.perf_counter() - wall) * 1e3 / len(paths), (time.process_time() - cpu) * 1e3 / len(paths))
                )
    best_floor = min(wall for wall, _ in timings["calamine floor"])
    print(f"{len(paths)} workbooks x {args.rounds} rounds; milliseconds per workbook")
    for name, values in timings.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        print(
            f"  {name:15s} wall {min(walls):6.3f} (median {statistics.median(walls):6.3f})  CPU {min(cpus):6.3f}"
            f"  = {min(walls) / best_floor:4.2f} x the floor"
        )


if __name__ == "__main__":
    main()
