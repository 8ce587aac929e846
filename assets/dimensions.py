"""Dimension tables from the catalog (unpartitioned; refreshed when the catalog changes)."""

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import preview
from pipelines.dims import DIMENSIONS
from pipelines.resources import CatalogResource, WarehouseResource
from pipelines.steps import publish_dimensions

DESCRIPTIONS = {name: (build.__doc__ or "").strip() for name, build in DIMENSIONS.items()}


@multi_asset(
    specs=[AssetSpec(name, group_name="curated", description=DESCRIPTIONS[name], kinds={"duckdb"}) for name in DIMENSIONS],
    can_subset=False,
)
def dimensions(
    context: AssetExecutionContext,
    catalog: CatalogResource,
    warehouse: WarehouseResource,
):
    """dim_* tables: one row per agency, data element, indicator, period x authority, plan, target, contact."""
    cat = catalog.load()
    with warehouse.warehouse().connect() as con:
        counts = publish_dimensions(con, cat)
        for name, rows in counts.items():
            frame = con.execute(f"select * from {name} limit 10").df()
            yield MaterializeResult(
                asset_key=name,
                metadata={"dagster/row_count": rows, "preview": preview(frame)},
            )
