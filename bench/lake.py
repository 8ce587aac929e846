"""Benchmark: many provinces publishing into one lake at once (issue #10).

63 provinces × ~64 agencies (~4,000 agencies), each with a working database of synthetic
curated tables for the quarters of one year, published quarter by quarter from several
worker processes at once into one DuckLake (PostgreSQL catalog, Parquet data). Prints the
commit-conflict rate, the retries, the lock waits and the throughput.

    .venv/bin/python bench/lake.py                      # throwaway PostgreSQL from /usr/lib/postgresql/15/bin
    .venv/bin/python bench/lake.py --provinces 63 --agencies 4000 --workers 8 --quarters 4
    .venv/bin/python bench/lake.py --lake 'postgres:dbname=… host=…' --data /srv/lake/data   # an existing lake
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUARTERS = ("Q1", "Q2", "Q3", "Q4")


def _build(task: tuple[str, str, int, tuple[str, ...]]) -> str:
    from pipelines.lake_synthetic import make_working_db

    path, code, agencies, partitions = task
    make_working_db(path, code, agencies=agencies, partitions=partitions, seed=1)
    return path


def _publish(task: tuple[str, str, str, str, str]) -> dict:
    import duckdb

    from pipelines.lake import publish_to_lake

    path, code, partition, lake, data = task
    started = time.perf_counter()
    with duckdb.connect(path) as con:  # read-write: the lake is attached through this connection
        counts = publish_to_lake(con, lake, data, [code], f"bench-{code}-{partition}", partitions=(partition,), lock_timeout=600)
    return {
        "code": code,
        "partition": partition,
        "rows": sum(counts.values()),
        "retries": counts.retries,
        "lock_wait": counts.lock_wait_seconds,
        "seconds": time.perf_counter() - started,
    }


def run(args, lake: str, data: str, folder: Path) -> None:
    codes = [f"P{i:02d}" for i in range(1, args.provinces + 1)]
    per = max(args.agencies // args.provinces, 1)
    partitions = tuple(f"{args.year}-{q}" for q in QUARTERS[: args.quarters])
    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(args.workers) as pool:
        works = pool.map(_build, [(str(folder / f"{c}.duckdb"), c, per, partitions) for c in codes])
    built = time.perf_counter() - t0
    # quarter by quarter, every province: what a busy closing day looks like
    tasks = [(w, c, p, lake, data) for p in partitions for w, c in zip(works, codes)]
    t0 = time.perf_counter()
    with ctx.Pool(args.workers) as pool:
        results = list(pool.imap_unordered(_publish, tasks))
    wall = time.perf_counter() - t0
    retries = sum(r["retries"] for r in results)
    commits = len(results)
    rows = sum(r["rows"] for r in results)
    seconds = sorted(r["seconds"] for r in results)
    print(
        f"provinces {args.provinces}, agencies {per * args.provinces} ({per} each), quarters {len(partitions)}, workers {args.workers}"
    )
    print(f"working databases built in {built:.1f} s")
    print(f"publishes: {commits} in {wall:.1f} s = {commits / wall:.2f} publishes/s, {rows / wall:,.0f} rows/s ({rows:,} rows)")
    print(f"commit conflicts (retries): {retries}; conflict rate {retries / (retries + commits):.1%} of commit attempts")
    print(
        f"retries per publish: max {max(r['retries'] for r in results)}, publishes retried {sum(1 for r in results if r['retries'])}"
    )
    print(
        f"publish time: median {statistics.median(seconds):.2f} s, p90 {seconds[int(0.9 * (len(seconds) - 1))]:.2f} s, max {seconds[-1]:.2f} s"
    )
    print(f"lock wait: max {max(r['lock_wait'] for r in results):.2f} s (different provinces never wait for each other)")
    from pipelines.lake import connect_lake

    with connect_lake(lake, data, read_only=True) as con:
        snapshots = con.execute("select count(*) from lake.snapshots()").fetchone()[0]
        nation = con.execute(
            "select period_code, round(value, 2), jurisdictions from lake.lake_rollup_indicator_value "
            "where indicator_code = 'on_time_rate' and scope = 'nation' order by period_code"
        ).fetchall()
    files = sum(1 for _ in Path(data).rglob("*.parquet")) if "://" not in data else "?"
    print(f"snapshots {snapshots}; Parquet files {files}; national on-time rate {nation}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provinces", type=int, default=63)
    parser.add_argument("--agencies", type=int, default=4000, help="in all, shared out among the provinces")
    parser.add_argument("--quarters", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=8, help="publishing processes at once")
    parser.add_argument("--lake", help="CCHC_LAKE of an existing, empty lake (default: a throwaway PostgreSQL)")
    parser.add_argument("--data", help="CCHC_LAKE_DATA (with --lake)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cchc-bench-lake-") as tmp:
        folder = Path(tmp)
        if args.lake:
            run(args, args.lake, args.data or str(folder / "data"), folder)
            return 0
        from pipelines.lake_synthetic import throwaway_postgres

        with throwaway_postgres() as pg:
            pg["createdb"]("bench")
            run(args, "postgres:" + pg["dsn"]("bench"), str(folder / "data"), folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
