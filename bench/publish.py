"""Benchmark: a re-run's publish onto a published file that holds years of history, the published
file copied first (as every publish did before the spare) against the spare brought up to date in
place (pipelines/publish.py).

    .venv/bin/python bench/run.py --scale nation --keep /tmp/bnation --no-naive    # once: a national quarter's site
    .venv/bin/python bench/publish.py --site /tmp/bnation --history-mb 1000 --repeat 3

Works on copies, in a temporary folder: the site's working database and parse cache, and its raw
folder as hard links. A stand-in for the history is added to the working database: a published
table (`fct_bench_history`) of old quarters' rows, about --history-mb on disk in the published file,
that no re-run touches, as ten years of a nation's quarters sit in the published file beside the
quarter a re-run changes. Then, each round: one workbook rewritten with HSO.01 + 1 (the benchmark's
re-run: every rule of the form still holds), the quarter's models built again in process
(`steps.build_quarter`, not timed), and the publish, timed: alternately with the spare removed
first (the publish copies the published file, flushes the copy and writes the slices) and with the
spare in place (brought up to date where it lies), kept whatever the file's size (the pipeline
keeps it from CCHC_SPARE_FROM_MB on, the size where the two cost the same, which this measures).
Prints each publish's wall time, the medians, the published file's size and what the folder
holds. Asserts nothing about timings; no network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HISTORY_TABLE = "fct_bench_history"
ROWS_PER_MB = 21_000  # the stand-in's rows per MB in the published file (measured: random text and numbers)


def add_history(con, megabytes: int, first_year: int) -> int:
    """The stand-in for the years before the site's quarter: rows spread over 40 old quarters."""
    rows = max(1, megabytes) * ROWS_PER_MB
    quarters = [f"{first_year - 10 + i // 4}-Q{i % 4 + 1}" for i in range(40)]
    con.execute(
        f"create or replace table {HISTORY_TABLE} as select "
        "list_extract($quarters, (i % 40)::integer + 1) as partition_key, "
        "'AG-' || (i % 4000)::varchar as agency_code, 'HSO.' || lpad(((i // 4000) % 60)::varchar, 2, '0') as element_code, "
        "random() * 1000 as value, md5(i::varchar) as note "
        "from range($rows) as t(i) order by partition_key",
        {"quarters": quarters, "rows": rows},
    )
    return rows


def rewrite_one(linked: Path, index: int) -> str:
    """Rewrite the index-th workbook of the quarter (a copy, not the site's file) with HSO.01 + 1,
    found where the pipeline's reader finds it (workbooks whose HSO.01 is missing or not a number
    are passed over)."""
    import openpyxl

    from pipelines.workbook import read_workbook

    paths = sorted(linked.rglob("*.xlsx"))
    for path in paths[index % len(paths) :] + paths[: index % len(paths)]:
        found = [f for f in read_workbook(path).figures if f.code == "HSO.01" and f.value is not None]
        if not found:
            continue
        book = openpyxl.load_workbook(path)
        book[found[0].sheet][found[0].cell].value = found[0].value + 1
        path.unlink()  # a hard link to the site's file: written anew, the site's left alone
        book.save(path)
        return path.name
    raise SystemExit(f"no workbook with an HSO.01 figure under {linked}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, required=True, help="a folder made by bench/run.py --keep")
    parser.add_argument("--history-mb", type=int, default=1000, help="the history stand-in's size in the published file")
    parser.add_argument("--repeat", type=int, default=3, help="publishes timed each way, alternated")
    parser.add_argument("--folder", type=Path, help="work here (kept) instead of a temporary folder")
    args = parser.parse_args()
    work_db = args.site / "runs" / "main" / "work" / "cchc.work.duckdb"
    if not work_db.exists():
        raise SystemExit(f"{work_db} not found: make the site with bench/run.py --keep {args.site} first")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="cchc-bench-publish-"))
    try:
        run(args, work_db, folder)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


def run(args, work_db: Path, folder: Path) -> None:
    from pipelines import publish as publishing
    from pipelines import steps
    from pipelines.catalog.core import Catalog
    from pipelines.warehouse import Warehouse

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work_db, folder / "work.duckdb")
    shutil.copytree(work_db.parent / "parsed", folder / "parsed", dirs_exist_ok=True)
    raw = folder / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    shutil.copytree(args.site / "raw", raw, copy_function=os.link)
    catalog = Catalog.load(args.site / "catalog")
    target = folder / "published" / "cchc.duckdb"
    with Warehouse(folder / "work.duckdb").connect() as con:
        (partition,) = [
            k for (k,) in con.execute("select distinct partition_key from raw_submission").fetchall() if k[:1].isdigit()
        ]
        now = dt.datetime(int(partition[:4]), 12, 31, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        as_of = os.environ.get("CCHC_AS_OF")
        if as_of:
            now = dt.datetime.fromisoformat(as_of)
        started = time.perf_counter()
        rows = add_history(con, args.history_mb, int(partition[:4]))
        print(f"history stand-in: {rows:,} rows in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        publishing.publish(con, target, run_id="first", partitions=(partition,))
        print(f"first publish (a new file): {time.perf_counter() - started:.1f} s, {target.stat().st_size / 2**20:,.0f} MiB")
        timings: dict[str, list[float]] = {"copied": [], "in place": []}
        spare = publishing.spare_path(target)
        for i in range(2 * args.repeat + 1):
            name = rewrite_one(raw / partition, i)
            started = time.perf_counter()
            steps.build_quarter(con, catalog, partition, now, raw_dir=raw, cache_dir=folder / "parsed")
            built = time.perf_counter() - started
            mode = "in place" if i % 2 == 0 else "copied"
            if mode == "copied" or i == 0:
                for leftover in (spare, spare.with_name(spare.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            started = time.perf_counter()
            # the spare kept whatever the file's size (CCHC_SPARE_FROM_MB is the crossover this measures)
            publishing.publish(con, target, run_id=f"re-run {i}", partitions=(partition,), spare_from_mb=0)
            seconds = time.perf_counter() - started
            if i == 0:  # the first re-run's publish copies (no spare yet) and leaves one
                print(f"re-run {i} ({name}): built in {built:.1f} s, published (copied, untimed) in {seconds:.2f} s")
                continue
            timings[mode].append(seconds)
            print(f"re-run {i} ({name}): built in {built:.1f} s, published {mode} in {seconds:.2f} s")
    size = target.stat().st_size
    spare_size = spare.stat().st_size if spare.exists() else 0
    print()
    print(f"published file {size / 2**20:,.0f} MiB; spare {spare_size / 2**20:,.0f} MiB beside it")
    for mode, values in timings.items():
        print(f"publish {mode:8}: median {statistics.median(values):.2f} s ({' / '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
