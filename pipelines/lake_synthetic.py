"""Synthetic working databases for the lake's tests and benchmark (tests/test_lake.py, bench/lake.py).

`make_working_db` writes the curated tables of one jurisdiction, with the published column
names of docs/data_dictionary.md (a subset of the columns), private columns included (so the
tests see them left out), and a version marker: every `submission_id` starts with
`v<version>-`, and every agency's denominators grow with the version, so a reader can tell
two publishes of the same jurisdiction apart and check that a snapshot never mixes them.

`python -m pipelines.lake_synthetic publish …` is the separate process the tests and the
benchmark start: build (or reuse) a working database, then publish it into the lake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

INDICATORS = (  # code, method, unit, direction, multiplier
    ("on_time_rate", "ratio", "%", "higher", 100.0),
    ("online_rate", "ratio", "%", "higher", 100.0),
    ("satisfaction", "ratio", "%", "higher", 100.0),
    ("avg_minutes", "weighted_mean", "phút", "lower", 1.0),
    ("pci_rank", "external", "hạng", "lower", 1.0),
)
LEVELS = ("province", "district", "commune")
WINDOW = {1: "Q1", 2: "H1", 3: "Q3", 4: "Y"}
ELEMENTS = tuple(f"HSO.{i:02d}" for i in range(1, 9))

_DDL = """
create table dim_agency (org_unit_code varchar, name_vi varchar, unit_type varchar, admin_level varchar, parent_code varchar,
    jurisdiction_code varchar, reporting_authority varchar, reports boolean);
create table dim_indicator (indicator_code varchar, name_vi varchar, method varchar, unit varchar, direction varchar, multiplier double);
create table dim_period (period_code varchar, authority varchar, period_year bigint, period_kind varchar);
create table dim_contact (org_unit_code varchar, role varchar, name varchar, email varchar, phone varchar);
create table fct_submission (submission_id varchar, partition_key varchar, agency_code varchar, jurisdiction_code varchar,
    period_code varchar, period_year integer, file_name varchar, validation_status varchar, preparer varchar, contact varchar);
create table fct_validation_finding (submission_id varchar, partition_key varchar, agency_code varchar, period_code varchar,
    rule_id varchar, severity varchar, message_vi varchar);
create table fct_data_element_value (agency_code varchar, admin_level varchar, jurisdiction_code varchar, period_code varchar,
    period_year integer, element_code varchar, value double, submission_id varchar);
create table fct_indicator_value (indicator_code varchar, scope varchar, org_unit_code varchar, admin_level varchar,
    jurisdiction_code varchar, period_code varchar, period_year integer, numerator double, denominator double, value double,
    unit varchar, direction varchar, reporting_units bigint);
create table fct_target_scorecard (plan_id varchar, target_id varchar, indicator_code varchar, scope varchar, org_unit_code varchar,
    admin_level varchar, period_code varchar, period_year integer, value double, met boolean, status varchar);
create table fct_reporting_rate (partition_key varchar, period_code varchar, authority varchar, admin_level varchar,
    expected_reports bigint, received_reports bigint, on_time_reports bigint, late_reports bigint, missing_reports bigint,
    pending_reports bigint, accepted_reports bigint, reporting_rate double, on_time_rate double, acceptance_rate double);
create table fct_alert (alert_id varchar, partition_key varchar, alert_type varchar, agency_code varchar, period_code varchar,
    message_vi varchar, act_by_email varchar, par_office_email varchar);
create table raw_value (submission_id varchar, partition_key varchar, code varchar, raw_text varchar, value double,
    parse_status varchar, sheet varchar, cell varchar, note varchar);
create table publish_log (published_at timestamptz not null, run_id varchar, partitions varchar, tables integer not null,
    total_rows bigint not null, database_file varchar not null);
"""


def make_working_db(
    path: Path | str,
    jurisdiction: str,
    agencies: int = 12,
    partitions: tuple[str, ...] = ("2024-Q1", "2024-Q2"),
    version: int = 1,
    seed: int = 0,
) -> Path:
    """Write (replace) a working database holding one jurisdiction's curated tables."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    rng = random.Random(f"{jurisdiction}:{seed}")
    j = jurisdiction
    agency_rows = [(j, f"Địa bàn {j}", "province", "province", None, j, None, False)]
    for i in range(agencies):
        level = LEVELS[i % len(LEVELS)]
        agency_rows.append((f"{j}-A{i:04d}", f"Cơ quan {i} ({j})", "people_committee", level, j, j, j, True))
    codes = [(row[0], row[3]) for row in agency_rows[1:]]
    submissions, findings, elements, indicators, alerts, rates, periods = [], [], [], [], [], [], set()
    for pk in partitions:
        year, quarter = int(pk[:4]), int(pk[-1])
        period = f"{year}-{WINDOW[quarter]}"
        periods.add((period, j, year, WINDOW[quarter]))
        received = {code for code, _ in codes if rng.random() < 0.9}
        for code, level in codes:
            if code not in received:
                alerts.append(
                    (
                        f"{code}:{period}:missing",
                        pk,
                        "missing",
                        code,
                        period,
                        "Chưa nộp báo cáo",
                        f"{code}@x.gov.vn",
                        f"{j}@x.gov.vn",
                    )
                )
                continue
            sid = f"v{version}-{code}-{period}"
            submissions.append(
                (sid, pk, code, j, period, year, f"{code}_{period}.xlsx", "accepted", "Nguyễn Văn A", "0900000000")
            )
            if rng.random() < 0.2:
                findings.append((sid, pk, code, period, "HSO_OUTLIER", "warning", "Giá trị bất thường"))
            for element in ELEMENTS:
                elements.append((code, level, j, period, year, element, float(rng.randint(0, 500)), sid))
            for ind, method, unit, direction, mult in INDICATORS:
                if method == "external":
                    continue
                den = float(rng.randint(10, 200) + version)
                num = float(rng.randint(0, int(den))) if method == "ratio" else den * rng.uniform(5, 60)
                indicators.append((ind, "agency", code, level, j, period, year, num, den, num / den * mult, unit, direction, 1))
        expected = {lvl: sum(1 for _, level in codes if level == lvl) for lvl in LEVELS}
        got = {lvl: sum(1 for code, level in codes if level == lvl and code in received) for lvl in LEVELS}
        for lvl in (*LEVELS, "all"):
            e = sum(expected.values()) if lvl == "all" else expected[lvl]
            r = sum(got.values()) if lvl == "all" else got[lvl]
            on_time = r - (r // 5)
            rates.append(
                (
                    pk,
                    period,
                    j,
                    lvl,
                    e,
                    r,
                    on_time,
                    r - on_time,
                    e - r,
                    0,
                    r,
                    100.0 * r / e if e else None,
                    100.0 * on_time / e if e else None,
                    100.0 * r / e if e else None,
                )
            )
    con = duckdb.connect(str(path))
    try:
        con.execute(_DDL)
        for table, rows in (
            ("dim_agency", agency_rows),
            ("dim_indicator", [(c, f"Chỉ số {c}", m, u, d, x) for c, m, u, d, x in INDICATORS]),
            ("dim_period", sorted(periods)),
            ("dim_contact", [(code, "submitter", "Trần Thị B", f"{code}@x.gov.vn", "0911") for code, _ in codes]),
            ("fct_submission", submissions),
            ("fct_validation_finding", findings),
            ("fct_data_element_value", elements),
            ("fct_indicator_value", indicators),
            ("fct_reporting_rate", rates),
            ("fct_alert", alerts),
        ):
            _insert(con, table, rows)
        # level and jurisdiction aggregates: sum of numerators / sum of denominators
        con.execute(
            """
            insert into fct_indicator_value
            select f.indicator_code, 'level', f.jurisdiction_code, f.admin_level, f.jurisdiction_code, f.period_code, f.period_year,
                   sum(numerator), sum(denominator), sum(numerator) / sum(denominator) * any_value(i.multiplier), any_value(f.unit),
                   any_value(f.direction), count(*)
            from fct_indicator_value f join dim_indicator i using (indicator_code)
            where scope = 'agency' group by all
            union all
            select f.indicator_code, 'jurisdiction', f.jurisdiction_code, 'all', f.jurisdiction_code, f.period_code, f.period_year,
                   sum(numerator), sum(denominator), sum(numerator) / sum(denominator) * any_value(i.multiplier), any_value(f.unit),
                   any_value(f.direction), count(*)
            from fct_indicator_value f join dim_indicator i using (indicator_code)
            where scope = 'agency' group by all
            """
        )
        con.execute(
            """
            insert into fct_target_scorecard
            select 'plan-' || jurisdiction_code, 'T-' || indicator_code, indicator_code, scope, org_unit_code, admin_level,
                   period_code, period_year, round(value, 2), value >= 80, case when value >= 80 then 'target_achieved' else 'limited_progress' end
            from fct_indicator_value where scope <> 'agency' and unit = '%'
            """
        )
    finally:
        con.close()
    return path


PG_BIN = Path(os.environ.get("CCHC_PG_BIN", "/usr/lib/postgresql/15/bin"))


class NoPostgres(RuntimeError):
    """The PostgreSQL server binaries are not on this machine (or could not start)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(user: str = "cchc", base: str | None = None) -> Iterator[dict]:
    """A PostgreSQL server for tests and benchmarks: initdb in a temporary folder (as the `postgres` OS user
    when run as root), trust authentication, a free port on 127.0.0.1, stopped and removed at the end.

    Yields {"port", "dsn"(dbname) -> libpq string, "createdb"(name)}."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        raise NoPostgres(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install -y postgresql, or set CCHC_PG_BIN)")
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("runuser"):
        raise NoPostgres("running as root without runuser: cannot start PostgreSQL as the postgres OS user")
    folder = Path(tempfile.mkdtemp(prefix="cchc-pg-", dir=base))  # /tmp or /dev/shm: the postgres user must reach it
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(folder, "postgres")
    port, data = free_port(), folder / "data"

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, cwd=folder)

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {folder} -h 127.0.0.1 -c fsync=off -c max_connections=300"
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoPostgres(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-300:]}") from None
    try:
        yield {
            "port": port,
            "dsn": lambda name: f"dbname={name} host=127.0.0.1 port={port} user={user}",
            "createdb": lambda name: run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, name),
        }
    finally:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "stop", "-m", "fast"], capture_output=True, cwd=folder)
        shutil.rmtree(folder, ignore_errors=True)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Insert many rows, 500 per statement (executemany goes row by row; pandas costs 2 s to import)."""
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        marks = ", ".join(["(" + ", ".join("?" * len(chunk[0])) + ")"] * len(chunk))
        con.execute(f"insert into {table} values {marks}", [v for row in chunk for v in row])


def _publish(args) -> dict:
    from pipelines.lake import publish_to_lake

    if args.pause_before_commit:
        import pipelines.lake

        def pause() -> None:  # the test SIGKILLs this process here, with the commit staged
            Path(args.pause_before_commit).write_text("staged", encoding="utf-8")
            time.sleep(3600)

        pipelines.lake._before_commit = pause
    path = Path(args.work)
    if args.make or not path.exists():
        make_working_db(path, args.jurisdiction, args.agencies, tuple(args.partitions), args.version, args.seed)
    con = duckdb.connect(str(path))
    results = []
    try:
        for i in range(args.repeat):
            if args.alternate and i:
                con.close()
                make_working_db(path, args.jurisdiction, args.agencies, tuple(args.partitions), args.version + i, args.seed)
                con = duckdb.connect(str(path))
            started = time.perf_counter()
            counts = publish_to_lake(
                con,
                args.lake,
                args.data,
                [args.jurisdiction],
                f"{args.run_id}-{i}",
                partitions=tuple(args.partitions) if args.slices else (),
                lock_timeout=args.lock_timeout,
            )
            result = {
                "jurisdiction": args.jurisdiction,
                "rows": sum(counts.values()),
                "retries": counts.retries,
                "snapshot": counts.snapshot_id,
                "lock_wait": counts.lock_wait_seconds,
                "seconds": time.perf_counter() - started,
                "version": args.version + (i if args.alternate else 0),
            }
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        con.close()
    return {"publishes": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.lake_synthetic")
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="build a synthetic working database and publish it into the lake")
    pub.add_argument("--work", required=True, help="working DuckDB file (built when missing or with --make)")
    pub.add_argument("--lake", required=True)
    pub.add_argument("--data", required=True)
    pub.add_argument("--jurisdiction", required=True)
    pub.add_argument("--agencies", type=int, default=12)
    pub.add_argument("--partitions", nargs="+", default=["2024-Q1", "2024-Q2"])
    pub.add_argument("--version", type=int, default=1)
    pub.add_argument("--seed", type=int, default=0)
    pub.add_argument("--run-id", default="synthetic")
    pub.add_argument("--repeat", type=int, default=1, help="publish this many times")
    pub.add_argument("--alternate", action="store_true", help="rebuild with the next version before each repeat")
    pub.add_argument("--make", action="store_true", help="rebuild the working database even if it exists")
    pub.add_argument("--slices", action="store_true", help="publish the partitions' slices (default: the jurisdiction whole)")
    pub.add_argument("--pause-before-commit", metavar="FILE", help="tests: write FILE and wait just before COMMIT")
    pub.add_argument("--lock-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    _publish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
