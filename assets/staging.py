"""Staging layer: typed workbooks and figure cells, matched to the catalog."""

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import table_metadata
from pipelines import steps
from pipelines.partitions import quarterly_partitions
from pipelines.resources import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec(
            "stg_submission",
            group_name="staging",
            deps=["raw_submission", "dim_agency"],
            description="One row per workbook of the quarter, typed, with its agency's level and jurisdiction.",
            kinds={"duckdb"},
        ),
        AssetSpec(
            "stg_value",
            group_name="staging",
            deps=["raw_value", "dim_data_element"],
            description="One row per figure cell of the quarter's workbooks, with its data element kind.",
            kinds={"duckdb"},
        ),
    ],
    partitions_def=quarterly_partitions,
    can_subset=False,
)
def staging(context: AssetExecutionContext, warehouse: WarehouseResource):
    """stg_submission and stg_value for the quarter (sql/staging)."""
    pk = context.partition_key
    with warehouse.warehouse().connect() as con:
        for table, rows in steps.stage_partition(con, pk).items():
            yield MaterializeResult(
                asset_key=table,
                metadata=table_metadata(con, table, "partition_key = $p", {"p": pk}, rows),
            )
