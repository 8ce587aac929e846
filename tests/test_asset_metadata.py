"""The metadata each model's asset gets: its column schema and a markdown preview of its slice."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from assets.common import markdown_table, preview


def test_a_preview_is_a_markdown_table_with_empty_cells_for_null():
    frame = pd.DataFrame(
        {
            "code": ["HSO.01", "a|b"],
            "value": [12.5, None],
            "at": [pd.Timestamp("2024-04-05 09:30", tz="Asia/Ho_Chi_Minh"), pd.NaT],
            "note": ["hai\ndòng", None],
        }
    )
    assert preview(frame).value.splitlines() == [
        "| code | value | at | note |",
        "|---|---|---|---|",
        "| HSO.01 | 12.5 | 2024-04-05 09:30:00+07:00 | hai dòng |",
        "| a\\|b |  |  |  |",
    ]
    assert preview(frame, 1).value.count("\n") == 2  # header, rule, one row
    assert preview(pd.DataFrame()).value == markdown_table(["x"], []).value == "_(no rows)_"


def test_a_model_s_metadata_takes_its_schema_from_the_preview_query(tmp_path):
    """One query gives the preview and the schema: the same names and types as `describe`."""
    from assets.factory import _metadata
    from pipelines.models import ModelRun, all_models

    model = all_models()["fct_submission"]
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "create table fct_submission (submission_id varchar, partition_key varchar, error_count integer,"
        " received_at timestamptz, ids varchar[], share decimal(5, 2))"
    )
    con.execute("insert into fct_submission values ('a', '2024-Q1', 2, null, ['x', 'y'], 1.5), ('b', '2024-Q2', 0, null, [], 0)")
    metadata = _metadata(con, model, 1, ModelRun(con, "2024-Q1", now=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)))
    described = [(name, type_) for name, type_, *_ in con.execute("describe fct_submission").fetchall()]
    assert [(c.name, c.type) for c in metadata["dagster/column_schema"].columns] == described
    assert metadata["dagster/row_count"] == 1
    assert metadata["preview"].value.splitlines() == [  # the slice's rows only
        "| submission_id | partition_key | error_count | received_at | ids | share |",
        "|---|---|---|---|---|---|",
        "| a | 2024-Q1 | 2 |  | ['x', 'y'] | 1.50 |",
    ]
