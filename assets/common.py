"""Small helpers shared by the asset modules: metadata previews and partition facts."""

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from pipelines.periods import partition_report


def preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    """A markdown preview of the first rows of a frame."""
    if frame is None or frame.empty:
        return MetadataValue.md("_(no rows)_")
    return MetadataValue.md(frame.head(rows).to_markdown(index=False))


def table_metadata(con, table: str, where: str, params: dict, rows: int) -> dict:
    """row_count plus a preview of the slice just written (where is a fixed SQL predicate)."""
    frame = con.execute(f"select * from {table} where {where} limit 10", params).df()
    return {"dagster/row_count": rows, "preview": preview(frame)}


def partition_year(partition_key: str) -> int:
    return partition_report(partition_key).year


def rows_check(check_name: str, rows: pd.DataFrame, severity: AssetCheckSeverity, **extra) -> AssetCheckResult:
    """An asset check that passes when there are no offending rows, and attaches them as metadata."""
    return AssetCheckResult(
        check_name=check_name,
        passed=bool(rows.empty),
        severity=severity,
        metadata={"count": len(rows), **extra, "offending_rows": preview(rows, 50)},
    )
