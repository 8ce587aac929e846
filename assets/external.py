"""External indicators: the values the PAR office records from published results (PAR INDEX, PCI, ...)."""

from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    multi_asset,
)

from assets.common import preview, rows_check
from pipelines.external import refresh_external
from pipelines.partitions import quarterly_partitions
from pipelines.resources import CatalogResource, ClockResource, RawFolderResource, WarehouseResource

EXTERNAL_TABLES = {
    "raw_external_value": (
        "raw",
        "One row per row of every external-values form file under <raw>/external (valid or not), with file, "
        "content hash, sheet, cell and received time.",
    ),
    "fct_external_value": (
        "curated",
        "One row per external indicator x jurisdiction x level x year in force: the newest file's valid value, "
        "with its source document and provenance.",
    ),
    "fct_external_finding": (
        "curated",
        "One row per problem found in an external-values form: file, sheet!cell, rule, value, messages.",
    ),
}


@multi_asset(
    specs=[
        AssetSpec(name, group_name=group, description=text, kinds={"duckdb"}, deps=["dim_indicator", "dim_agency"])
        for name, (group, text) in EXTERNAL_TABLES.items()
    ],
    check_specs=[
        AssetCheckSpec(
            "external_form_without_errors",
            asset="fct_external_finding",
            description="Every row of the external-values forms is valid (a row with an error is not used).",
        )
    ],
    partitions_def=quarterly_partitions,
    can_subset=False,
)
def external_values(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
    raw: RawFolderResource,
    clock: ClockResource,
):
    """Read every form under <raw>/external and rewrite the three tables whole (the input is small, so any
    quarter's run refreshes them; partitioned only to run inside cchc_quarterly before the scorecard)."""
    with warehouse.warehouse().connect() as con:
        counts = refresh_external(con, catalog.load(), raw.path, clock.now(), raw.limits())
        frames = {table: con.execute(f"select * from {table} limit 10").df() for table in EXTERNAL_TABLES}
        findings = con.execute(
            "select file_name, location, rule_id, value, message_vi from fct_external_finding order by file_name, row_number"
        ).df()
    context.log.info(f"external values: {counts}")
    for table in EXTERNAL_TABLES:
        yield MaterializeResult(asset_key=table, metadata={"dagster/row_count": counts[table], "preview": preview(frames[table])})
    yield rows_check("external_form_without_errors", findings, AssetCheckSeverity.WARN)
