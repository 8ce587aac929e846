"""Command line: run the pipeline in-process on a raw folder and print where the results are.

python -m pipelines demo                 # the shipped demo data, then a summary
python -m pipelines run [--partition 2024-04-01 ...]
python -m pipelines summary
python -m pipelines template --agency TD-XA-LIEUTU --period "Quý I/2025" --out form.xlsx
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SUMMARY_INDICATORS = {
    "on_time_rate": "Tỷ lệ hồ sơ đúng hạn (on-time rate)",
    "online_payment_rate": "Tỷ lệ thanh toán trực tuyến (online-payment rate)",
    "result_digitization": "Tỷ lệ số hóa kết quả (digitization %)",
}


def _prepare_environment() -> None:
    """Local embedded defaults: DAGSTER_HOME at the repository root (dagster.yaml there)."""
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT))
    os.chdir(os.environ.get("CCHC_WORKDIR", str(REPO_ROOT)))


def partitions_with_files(raw_dir: Path) -> list[str]:
    from pipelines.ingest import (
        UNASSIGNED,
        file_partition,
        folder_period,
        scan_raw_folder,
    )
    from pipelines.workbook import read_workbook

    keys = {file_partition(read_workbook(p), folder_period(p, raw_dir)) for p in scan_raw_folder(raw_dir)}
    return sorted(k for k in keys if k != UNASSIGNED)


def run(partitions: list[str] | None = None, quiet: bool = False) -> list[str]:
    """Publish the dimensions, then run the quarterly job for each partition, in order."""
    from dagster import DagsterInstance

    from pipelines.definitions import defs

    instance = DagsterInstance.get()
    resources = defs.resources
    raw_dir = resources["raw"].path
    partitions = partitions or partitions_with_files(raw_dir)
    if not partitions:
        print(
            f"Không có tệp .xlsx nào trong {raw_dir} / no workbook under {raw_dir}",
            file=sys.stderr,
        )
        return []
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def("cchc_catalog").execute_in_process(instance=instance, run_config=quiet_logs)
    if not result.success:
        raise SystemExit("catalog job failed")
    for key in partitions:
        started = time.perf_counter()
        result = defs.resolve_job_def("cchc_quarterly").execute_in_process(
            partition_key=key, instance=instance, run_config=quiet_logs
        )
        if not quiet:
            print(f"  quý {key}: {'ok' if result.success else 'FAILED'} ({time.perf_counter() - started:.1f} s)")
        if not result.success:
            raise SystemExit(f"quarterly job failed for partition {key}")
    return partitions


def summary() -> str:
    """A short text summary of the latest quarter in the warehouse."""
    from pipelines.definitions import defs
    from pipelines.warehouse import Warehouse

    db = Path(defs.resources["warehouse"].database_path).resolve()
    lines = [f"Kết quả / results: {db}"]
    with Warehouse(db).connect(read_only=True) as con:
        latest = con.execute(
            "select period_code from fct_indicator_value where period_code similar to '[0-9]{4}-Q[1-4]' "
            "order by period_year desc, period_code desc limit 1"
        ).fetchone()
        if not latest:
            return "\n".join([*lines, "(chưa có số liệu / no indicator values yet)"])
        period = latest[0]
        lines.append(f"Quý gần nhất / latest quarter: {period}")
        rows = con.execute(
            "select indicator_code, org_unit_code, admin_level, value from fct_indicator_value "
            "where period_code = $p and scope in ('level', 'jurisdiction') and list_contains($codes, indicator_code) "
            "order by indicator_code, org_unit_code, case admin_level when 'all' then 9 else 0 end, admin_level",
            {"p": period, "codes": list(SUMMARY_INDICATORS)},
        ).fetchall()
        for code, title in SUMMARY_INDICATORS.items():
            lines.append(f"  {title}:")
            for unit in sorted({u for c, u, _, _ in rows if c == code}):
                parts = [f"{lvl} {val:.1f}%" for c, u, lvl, val in rows if c == code and u == unit and val is not None]
                lines.append(f"    {unit}: " + "; ".join(parts))
        rates = con.execute(
            "select authority, period_code, reporting_rate, on_time_rate, missing_reports, late_reports from fct_reporting_rate "
            "where admin_level = 'all' order by authority, period_code"
        ).fetchall()
        lines.append("Nộp báo cáo / reporting (rate %, on time %, missing, late):")
        lines += [f"  {a} {p}: {r}% | {o}% | {m} | {late}" for a, p, r, o, m, late in rates]
        alerts = con.execute("select alert_type, count(*) from fct_alert group by 1 order by 1").fetchall()
        lines.append("Cảnh báo mở / open alerts: " + ", ".join(f"{t} {n}" for t, n in alerts))
        off = con.execute(
            "select plan_id, target_id, indicator_code, org_unit_code, admin_level, value, operator, target_value, gap_points, "
            "status, projected_met from fct_target_scorecard where period_code = $p and met = false "
            "order by scope = 'agency', gap_points desc",
            {"p": period},
        ).fetchall()
        lines.append(f"Chỉ tiêu chưa đạt / targets not met in {period}: {len(off)} (fct_target_scorecard)")
        for plan, target, indicator, unit, level, value, op, goal, gap, status, will in off[:8]:
            outlook = {True: "sẽ đạt / on course", False: "không kịp / will miss"}.get(will, "chưa rõ / unknown")
            lines.append(
                f"  {plan} {target} {indicator} @ {unit} ({level}): {value:.1f} {op} {goal:g}, thiếu / short {gap:.1f} - {status}, {outlook}"
            )
    lines.append("Mở bằng / open with: duckdb -readonly " + str(db) + "   (docs/queries.md has example queries)")
    return "\n".join(lines)


def template(agency: str, period: str, out: Path) -> Path:
    """A blank CCHC-1 workbook for one agency and period, every data element row present."""
    from pipelines.catalog import Catalog
    from pipelines.form_writer import FormContent, Quirks, write_form
    from pipelines.periods import parse_period

    catalog = Catalog.load(Path(os.environ.get("CCHC_CATALOG_DIR", "catalog")))
    unit = catalog.units_by_code.get(agency)
    if unit is None:
        raise SystemExit(f"Mã đơn vị không có trong danh mục / unknown agency code: {agency}")
    label = parse_period(period).label_vi
    elements = catalog.data_elements
    labels = {r["code"]: (("- " if r["parent_code"] else "") + r["name_vi"], r["unit"]) for r in elements.to_dict("records")}
    content = FormContent(
        agency,
        unit["name_vi"],
        label,
        None,
        {c: None for c in elements["code"]},
        labels=labels,
    )
    return write_form(out, content, Quirks(title_rows=2))


def describe_command(database: Path | None, as_json: bool) -> int:
    import json

    from pipelines.schema import describe

    database = database or Path(os.environ.get("CCHC_DATABASE", "data/curated/cchc.duckdb"))
    tables = describe(database)
    if as_json:
        print(json.dumps(tables, ensure_ascii=False))
    else:
        for table, columns in tables.items():
            print(f"{table}: " + ", ".join(f"{c['name']} {c['type']}" for c in columns))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run on the shipped demo data (data/raw) and print a summary")
    run_p = sub.add_parser(
        "run",
        help="run the quarterly job for partitions (default: every quarter with files)",
    )
    run_p.add_argument(
        "--partition",
        action="append",
        help="quarter partition key, e.g. 2024-04-01 (repeatable)",
    )
    sub.add_parser("summary", help="print the summary of the latest quarter")
    desc = sub.add_parser("describe", help="list the curated tables and their columns (JSON with --json)")
    desc.add_argument("--database", type=Path, help="DuckDB file (default: CCHC_DATABASE or data/curated/cchc.duckdb)")
    desc.add_argument("--json", action="store_true")
    tpl = sub.add_parser("template", help="write a blank reporting workbook for an agency")
    tpl.add_argument("--agency", required=True)
    tpl.add_argument("--period", required=True)
    tpl.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    _prepare_environment()
    if args.command == "describe":
        return describe_command(args.database, args.json)
    if args.command == "template":
        print(template(args.agency, args.period, args.out))
        return 0
    if args.command in ("demo", "run"):
        print("Đang chạy pipeline / running the pipeline ...")
        done = run(getattr(args, "partition", None))
        if not done:
            return 1
    print(summary())
    return 0
