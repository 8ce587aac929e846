"""Curated layer: the published fact tables analysts query."""

from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    asset,
    multi_asset,
)

from assets.common import partition_year, preview, rows_check, table_metadata
from pipelines import steps
from pipelines.partitions import quarterly_partitions
from pipelines.resources import CatalogResource, ClockResource, WarehouseResource
from pipelines.warehouse import query

PARTITION = "partition_key = $p"


@asset(
    group_name="curated",
    partitions_def=quarterly_partitions,
    deps=["int_element_value", "dim_agency", "dim_data_element"],
    kinds={"duckdb"},
    check_specs=[
        AssetCheckSpec(
            "no_negative_derived_flows",
            asset="fct_data_element_value",
            description="Derived quarter flows are not negative (a cumulative report smaller than its parts).",
        )
    ],
)
def fct_data_element_value(context: AssetExecutionContext, warehouse: WarehouseResource):
    """One row per agency x period (report window or derived quarter) x data element, with provenance."""
    year = partition_year(context.partition_key)
    with warehouse.warehouse().connect() as con:
        rows = steps.data_element_values(con, year)
        meta = table_metadata(con, "fct_data_element_value", "period_year = $y", {"y": year}, rows)
        negative = query(con, "quality/negative_derived_flows", {"year": year})
    yield MaterializeResult(metadata=meta)
    yield rows_check("no_negative_derived_flows", negative, AssetCheckSeverity.WARN)


@asset(
    group_name="curated",
    partitions_def=quarterly_partitions,
    deps=["int_element_value", "dim_indicator", "dim_agency"],
    kinds={"duckdb"},
    check_specs=[
        AssetCheckSpec(
            "percentages_within_0_100",
            asset="fct_indicator_value",
            blocking=True,
            description="Percentage indicators of report windows lie in 0-100 and no numerator exceeds its denominator "
            "(no accepted workbook can break this: the ratio rules reject it first).",
        ),
        AssetCheckSpec(
            "derived_quarter_percentages_within_0_100",
            asset="fct_indicator_value",
            description="Derived quarters (Q2 = H1 - Q1, Q4 = Y - H1 - Q3) give percentages in 0-100: a failure means an "
            "agency's cumulative report disagrees with its earlier ones.",
        ),
    ],
)
def fct_indicator_value(context: AssetExecutionContext, warehouse: WarehouseResource):
    """One row per indicator x scope (agency, level, jurisdiction) x period: numerator, denominator, value."""
    year = partition_year(context.partition_key)
    with warehouse.warehouse().connect() as con:
        rows = steps.indicator_values(con, year)
        meta = table_metadata(con, "fct_indicator_value", "period_year = $y", {"y": year}, rows)
        broken = query(con, "quality/ratio_out_of_range", {"year": year, "derived": False})
        derived = query(con, "quality/ratio_out_of_range", {"year": year, "derived": True})
    yield MaterializeResult(metadata=meta)
    yield rows_check("percentages_within_0_100", broken, AssetCheckSeverity.ERROR)
    yield rows_check("derived_quarter_percentages_within_0_100", derived, AssetCheckSeverity.WARN)


@multi_asset(
    specs=[
        AssetSpec(
            "fct_submission",
            group_name="curated",
            deps=["int_submission_status", "int_finding", "dim_period"],
            kinds={"duckdb"},
            description="One row per workbook file received (accepted, rejected, superseded), with timeliness and reasons.",
        ),
        AssetSpec(
            "fct_validation_finding",
            group_name="curated",
            deps=["int_finding", "int_submission_status"],
            kinds={"duckdb"},
            description="One row per finding per workbook: agency, period, file, sheet!cell, rule, value, messages.",
        ),
    ],
    partitions_def=quarterly_partitions,
    can_subset=False,
)
def fct_submissions(context: AssetExecutionContext, warehouse: WarehouseResource):
    """fct_submission and fct_validation_finding for the quarter."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        for table, rows in steps.submissions_and_findings(con, pk).items():
            yield MaterializeResult(
                asset_key=table,
                metadata=table_metadata(con, table, PARTITION, {"p": pk}, rows),
            )


@multi_asset(
    specs=[
        AssetSpec(
            "fct_reporting_completeness",
            group_name="curated",
            deps=["int_expected_report", "int_submission_status"],
            kinds={"duckdb"},
            description="One row per expected report: received, on time, days late, missing.",
        ),
        AssetSpec(
            "fct_reporting_rate",
            group_name="curated",
            deps=["fct_reporting_completeness"],
            kinds={"duckdb"},
            description="One row per report window x authority x level: reporting rate and on-time rate.",
        ),
    ],
    partitions_def=quarterly_partitions,
    can_subset=False,
)
def fct_timeliness(context: AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource):
    """Completeness and timeliness of the quarter's report window, as of now (or CCHC_AS_OF)."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        for table, rows in steps.timeliness(con, pk, clock.now()).items():
            yield MaterializeResult(
                asset_key=table,
                metadata=table_metadata(con, table, PARTITION, {"p": pk}, rows),
            )


@asset(
    group_name="curated",
    partitions_def=quarterly_partitions,
    deps=[
        "fct_reporting_completeness",
        "int_submission_status",
        "int_finding",
        "dim_contact",
    ],
    kinds={"duckdb"},
)
def fct_alert(context: AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource):
    """One row per open alert (late, missing, rejected, warning) with who must act."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        rows = steps.alerts(con, pk, clock.now())
        counts = con.execute(
            "select alert_type, count(*) as alerts from fct_alert where partition_key = $p group by 1 order by 1",
            {"p": pk},
        ).df()
        meta = table_metadata(con, "fct_alert", PARTITION, {"p": pk}, rows) | {"by_type": preview(counts)}
        return MaterializeResult(metadata=meta)


@asset(
    group_name="curated",
    partitions_def=quarterly_partitions,
    deps=["fct_indicator_value", "int_element_value", "dim_target", "fct_external_value"],
    kinds={"duckdb"},
)
def fct_target_scorecard(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
):
    """One row per target x org unit (or level aggregate) x period: value, target, met, gap, status, projection."""
    year = partition_year(context.partition_key)
    with warehouse.warehouse().connect() as con:
        frame = steps.scorecard(con, catalog.load(), year)
    off_track = frame[(frame["met"] == False) & (frame["scope"] != "agency")]  # noqa: E712
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "preview": preview(frame),
            "aggregates_not_met": preview(
                off_track[
                    [
                        "plan_id",
                        "target_id",
                        "indicator_code",
                        "org_unit_code",
                        "admin_level",
                        "period_code",
                        "value",
                        "target_value",
                        "status",
                    ]
                ],
                30,
            ),
        }
    )


@asset(
    group_name="curated",
    partitions_def=quarterly_partitions,
    deps=["raw_task", "int_submission_status"],
    kinds={"duckdb"},
)
def fct_plan_task_status(context: AssetExecutionContext, warehouse: WarehouseResource):
    """One row per plan task in an in-force workbook: parsed due date, status, overdue flag."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        frame = steps.plan_tasks(con, pk)
    return MaterializeResult(metadata={"dagster/row_count": len(frame), "preview": preview(frame)})
