"""Raw layer: every workbook of a quarter, as loaded, with provenance."""

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import table_metadata
from pipelines import steps
from pipelines.partitions import quarterly_partitions
from pipelines.publish import mark_pending
from pipelines.resources import (
    CatalogResource,
    ClockResource,
    RawFolderResource,
    WarehouseResource,
)

RAW_TABLES = {
    "raw_submission": "One row per workbook file found for the quarter (accepted or not), with file hash and received time.",
    "raw_value": "One row per figure cell read from a workbook: code, raw text, parsed value, sheet and cell.",
    "raw_task": "One row per task row of a workbook's optional 'Nhiệm vụ' sheet.",
    "raw_read_finding": "One row per problem found while reading a workbook (unreadable file, missing sheet or header).",
}


@multi_asset(
    specs=[AssetSpec(name, group_name="raw", description=text, kinds={"duckdb"}) for name, text in RAW_TABLES.items()],
    partitions_def=quarterly_partitions,
    can_subset=False,
)
def raw_workbooks(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
    raw: RawFolderResource,
    clock: ClockResource,
):
    """Read every .xlsx under the raw folder that belongs to the quarter; unreadable files are kept on record."""
    pk = context.partition_key
    cat = catalog.load()
    with warehouse.warehouse().connect() as con:
        steps.ensure_dimensions(con, cat)
        mark_pending(con, pk)  # before any write of the quarter: the next publish carries it
        counts = steps.ingest_partition(
            con, cat, raw.path, pk, clock.now(), raw.register_path, warehouse.parse_cache_dir, raw.limits()
        )
        context.log.info(f"partition {pk}: {counts}")
        for table, rows in counts.items():
            yield MaterializeResult(
                asset_key=table,
                metadata=table_metadata(con, table, "partition_key = $p", {"p": pk}, rows),
            )
