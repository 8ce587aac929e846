"""Small helpers shared by the asset modules."""

import pandas as pd
from dagster import MetadataValue


def preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    """A markdown preview of the first rows of a frame."""
    if frame is None or frame.empty:
        return MetadataValue.md("_(no rows)_")
    return MetadataValue.md(frame.head(rows).to_markdown(index=False))
