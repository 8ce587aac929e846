"""Benchmarks: reading workbooks and running one quarter end to end, at a given scale.

    .venv/bin/python bench/run.py [--agencies 200] [--repeat 3]

Prints figures (files/s, seconds per stage, peak memory); asserts nothing. Uses synthetic
workbooks written into a temporary folder (all 77 data elements filled, a few quirks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import steps
from pipelines.catalog import Catalog
from pipelines.form_writer import FormContent, Quirks, write_form
from pipelines.periods import LOCAL_TZ
from pipelines.warehouse import Warehouse
from pipelines.workbook import read_workbook

REPO = Path(__file__).resolve().parent.parent


def synthetic_catalog(root: Path, agencies: int) -> Path:
    """The repository catalog plus `agencies` extra communes under TD."""
    import shutil

    target = root / "catalog"
    shutil.copytree(REPO / "catalog", target)
    with open(target / "org_units.csv", "a", encoding="utf-8") as handle:
        for i in range(agencies):
            handle.write(
                f"TD-XA-BENCH{i:04d},UBND xã Bench {i},Bench commune {i},people_committee,commune,TD,TD,TD,true,2009-08-01,,\n"
            )
    return target


def write_workbooks(raw: Path, catalog: Catalog, agencies: int) -> list[Path]:
    rng = random.Random(7)
    elements = catalog.data_elements.to_dict("records")
    paths = []
    for i in range(agencies):
        figures: dict[str, float] = {}
        for e in elements:  # parents first in the catalog, so an of-which child can use its parent's value
            if e["kind"] == "mean":
                figures[e["code"]] = rng.randint(5, 15)
            elif e["parent_code"]:
                figures[e["code"]] = round(figures[e["parent_code"]] * rng.uniform(0.6, 0.9))
            else:
                figures[e["code"]] = rng.randint(300, 400)
        figures["HSO.05"] = figures["HSO.03"] - figures["HSO.04"]
        quirks = Quirks(
            nfd=i % 3 == 0, vn_text_numbers=["HSO.01"] if i % 2 else [], engine="xlsxwriter" if i % 4 == 0 else "openpyxl"
        )
        content = FormContent(f"TD-XA-BENCH{i:04d}", f"UBND xã Bench {i}", "Quý I/2024", dt.date(2024, 3, 5), figures)
        paths.append(write_form(raw / "2024-Q1" / f"TD-XA-BENCH{i:04d}_2024-Q1.xlsx", content, quirks))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog = Catalog.load(synthetic_catalog(root, args.agencies))
        started = time.perf_counter()
        paths = write_workbooks(root / "raw", catalog, args.agencies)
        print(f"wrote {len(paths)} workbooks in {time.perf_counter() - started:.1f} s")

        reads = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for path in paths:
                read_workbook(path)
            reads.append(time.perf_counter() - started)
        median = statistics.median(reads)
        print(
            f"read_workbook: median {median:.2f} s for {len(paths)} files = {len(paths) / median:.0f} files/s ({median / len(paths) * 1000:.1f} ms/file)"
        )

        timings: dict[str, float] = {}
        now = dt.datetime(2024, 6, 1, tzinfo=LOCAL_TZ)
        with Warehouse(root / "bench.duckdb").connect() as con:

            def timed(name, fn):
                t0 = time.perf_counter()
                out = fn()
                timings[name] = time.perf_counter() - t0
                return out

            timed("dimensions", lambda: steps.publish_dimensions(con, catalog))
            timed(
                "ingest (read + raw tables)", lambda: steps.ingest_partition(con, catalog, root / "raw", "2024-01-01", now, None)
            )
            timed("staging", lambda: steps.stage_partition(con, "2024-01-01"))
            findings = timed("validation (GX, incl. import)", lambda: steps.validate_partition(con, catalog, "2024-01-01"))
            timed("submission status", lambda: steps.settle_partition(con, "2024-01-01"))
            timed("element values + derived quarters", lambda: steps.element_values(con, 2024))
            timed("indicator values", lambda: steps.indicator_values(con, 2024))
            timed("scorecard", lambda: steps.scorecard(con, catalog, 2024))
            timed(
                "timeliness + alerts",
                lambda: (
                    steps.expected_reports(con, catalog, "2024-01-01"),
                    steps.timeliness(con, "2024-01-01", now),
                    steps.alerts(con, "2024-01-01", now),
                ),
            )
            values = con.execute("select count(*) from raw_value").fetchone()[0]
        for name, seconds in timings.items():
            print(f"  {name:<36} {seconds:6.2f} s")
        print(f"one quarter end to end (steps): {sum(timings.values()):.2f} s; {values} cells, {len(findings)} findings")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
