"""Intermediate layer: validation findings, submission status, expected reports, conformed values."""

from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)

from assets.common import partition_year, rows_check, table_metadata
from pipelines import steps
from pipelines.partitions import quarterly_partitions
from pipelines.resources import CatalogResource, WarehouseResource
from pipelines.validation import RuleEngine

CHECK_COLUMNS = [
    "agency_code",
    "file_name",
    "location",
    "rule_id",
    "value",
    "message_vi",
]


@asset(
    group_name="intermediate",
    partitions_def=quarterly_partitions,
    deps=[
        "raw_submission",
        "raw_value",
        "raw_read_finding",
        "stg_submission",
        "stg_value",
    ],
    kinds={"duckdb", "great_expectations"},
    check_specs=[
        AssetCheckSpec(
            "no_rejected_workbooks",
            asset="int_finding",
            description="No workbook of the quarter breaks an error rule (rejected workbooks are listed).",
        ),
        AssetCheckSpec(
            "no_warnings",
            asset="int_finding",
            description="No workbook of the quarter raises a warning (late figures, outliers, implausible means).",
        ),
    ],
)
def int_finding(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
):
    """One row per finding per workbook of the quarter: read problems and broken rules (GX suites)."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        findings = steps.validate_partition(con, catalog.load(), pk)
        detail = con.execute(
            """
            select s.declared_agency_code as agency_code, s.file_name,
                   case when f.cell <> '' then f.sheet || '!' || f.cell else f.sheet end as location,
                   f.rule_id, f.value, f.message_vi, f.severity
            from int_finding as f join raw_submission as s using (submission_id, partition_key)
            where f.partition_key = $p order by s.file_name, f.rule_id
            """,
            {"p": pk},
        ).df()
        meta = table_metadata(con, "int_finding", "partition_key = $p", {"p": pk}, len(findings))
    yield MaterializeResult(metadata=meta)
    for check, severity in (
        ("no_rejected_workbooks", "error"),
        ("no_warnings", "warning"),
    ):
        rows = detail[detail["severity"] == severity][CHECK_COLUMNS]
        yield rows_check(check, rows, AssetCheckSeverity.WARN, workbooks=int(rows["file_name"].nunique()))


@asset(
    group_name="intermediate",
    partitions_def=quarterly_partitions,
    deps=["int_finding", "stg_submission"],
    kinds={"duckdb"},
)
def int_submission_status(context: AssetExecutionContext, warehouse: WarehouseResource):
    """One row per workbook of the quarter: accepted, rejected or superseded, and whether it is in force."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        rows = steps.settle_partition(con, pk)["int_submission_status"]
        return MaterializeResult(metadata=table_metadata(con, "int_submission_status", "partition_key = $p", {"p": pk}, rows))


@asset(
    group_name="intermediate",
    partitions_def=quarterly_partitions,
    deps=["dim_agency", "dim_period"],
    kinds={"duckdb"},
)
def int_expected_report(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
):
    """One row per agency expected to send the quarter's report window (active units, their calendar)."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        rows = steps.expected_reports(con, catalog.load(), pk)
        return MaterializeResult(metadata=table_metadata(con, "int_expected_report", "partition_key = $p", {"p": pk}, rows))


@asset(
    group_name="intermediate",
    partitions_def=quarterly_partitions,
    deps=["int_submission_status", "stg_value", "dim_data_element"],
    kinds={"duckdb"},
    check_specs=[
        AssetCheckSpec(
            "accepted_figures_pass_error_rules",
            asset="int_element_value",
            blocking=True,
            description="The figures in force break no error rule (defence in depth: rejected workbooks never get here).",
        )
    ],
)
def int_element_value(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
):
    """One row per agency x period x data element of the quarter's year: report windows and derived quarters."""
    pk = context.partition_key
    year = partition_year(pk)
    with warehouse.warehouse().connect() as con:
        rows = steps.element_values(con, year)
        meta = table_metadata(con, "int_element_value", "period_year = $y", {"y": year}, rows)
        values = con.execute(
            "select agency_code || ' ' || period_code as submission_id, code, value from int_element_value "
            "where period_year = $y and not is_derived",
            {"y": year},
        ).df()
    yield MaterializeResult(metadata=meta)
    broken = RuleEngine(catalog.load()).check_compare_rules(values, severity="error") if not values.empty else values
    columns = ["submission_id", "rule_id", "message_vi"]
    yield rows_check(
        "accepted_figures_pass_error_rules", broken[columns] if not broken.empty else broken, AssetCheckSeverity.ERROR
    )
