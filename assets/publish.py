"""Publish: the analysts' database, replaced whole and atomically after a successful run."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, MaterializeResult, asset

from assets.common import preview
from pipelines.model_docs import grain_keys
from pipelines.models import all_models
from pipelines.publish import NOT_PUBLISHED, publish
from pipelines.resources import WarehouseResource

PUBLISHED_MODELS = [name for name, model in all_models().items() if model.published_name and name not in NOT_PUBLISHED]


GRAIN_KEYS = grain_keys()


@asset(
    group_name="publish",
    check_specs=[
        AssetCheckSpec(
            "every_table_keeps_its_grain",
            asset="published_database",
            blocking=True,
            description="Every published table (" + ", ".join(GRAIN_KEYS) + ") has one row per its key (unique; required"
            " parts not null), checked in the new file before the switch: a failure publishes nothing.",
        )
    ],
    deps=PUBLISHED_MODELS,
    kinds={"duckdb"},
)
def published_database(context: AssetExecutionContext, warehouse: WarehouseResource):
    """The analysts' DuckDB file (CCHC_DATABASE): every dim_/fct_ table of the working database, without
    personal data, written to a new file and renamed over the old one (readers never see a mix);
    with CCHC_LAKE set, the same tables also go into the shared DuckLake, jurisdiction by jurisdiction."""
    import pandas as pd

    with warehouse.warehouse().connect() as con:
        partitions = tuple(p for p in context.run.tags.get("cchc/partitions", "").split(",") if p)
        grain: dict = {}
        counts = publish(
            con, warehouse.published_path, run_id=context.run_id, partitions=partitions, grain_report=grain,
            spare_from_mb=warehouse.spare_from_mb,
        )  # fmt: skip
        lake_meta = {}
        if warehouse.lake:
            from pipelines.lake import publish_to_lake, reporting_jurisdictions

            codes = [c for c in warehouse.lake_jurisdictions.split(",") if c] or reporting_jurisdictions(con)
            lake = publish_to_lake(con, warehouse.lake, warehouse.lake_data, codes, context.run_id, partitions=partitions)
            lake_meta = {
                "lake_rows": int(sum(lake.values())),
                "lake_snapshot": str(lake.snapshot_id),
                "lake_commit_retries": int(lake.retries),
                "lake_jurisdictions": ", ".join(codes),
            }
    frame = pd.DataFrame({"table": list(counts), "rows": list(counts.values())})
    yield MaterializeResult(
        metadata={
            "path": str(warehouse.published_path.resolve()),
            "dagster/row_count": int(frame["rows"].sum()) if len(frame) else 0,
            "tables": preview(frame, 50),
            **lake_meta,
        }
    )
    found = {table: grain.get(table, {"duplicate_rows": 0, "null_key_rows": 0}) for table in GRAIN_KEYS}
    broken = pd.DataFrame(
        [{"table": table, **counts} for table, counts in found.items() if any(counts.values())],
        columns=["table", "duplicate_rows", "null_key_rows"],
    )
    yield AssetCheckResult(
        check_name="every_table_keeps_its_grain",
        passed=broken.empty,
        severity=AssetCheckSeverity.ERROR,
        metadata={"tables_checked": len(grain), "offending_tables": preview(broken, 50)},
    )
