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


def _fct_submission_table(con, extra: str = "") -> None:
    """fct_submission with the columns the published model declares for it (and `extra`)."""
    from pipelines.model_docs import load_model, objects

    (table,) = [t for t in objects(load_model()) if t["name"] == "fct_submission"]
    columns = ", ".join(f'"{c["name"]}" {c["type"]}' for c in table["columns"])
    con.execute(f"create table fct_submission ({columns}{extra})")
    con.execute("insert into fct_submission (submission_id, partition_key) values ('a', '2024-Q1')")


def test_a_materialization_carries_the_columns_only_where_they_are_not_the_declared_ones(tmp_path):
    """The asset's definition declares its columns (`declared_schemas`); a materialization whose
    table has those columns carries none of its own (each was serialised into the event, and read
    back for every data-version look-up); one whose table differs (a working database built by
    another version, with a column more) carries the table's, which the Dagster UI then shows."""
    from assets.factory import _metadata, declared_schemas
    from pipelines.models import ModelRun, all_models

    model = all_models()["fct_submission"]
    declared = declared_schemas([model])["fct_submission"]
    run_at = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    same = duckdb.connect(str(tmp_path / "same.duckdb"))
    _fct_submission_table(same)
    metadata = _metadata(same, model, 1, ModelRun(same, "2024-Q1", now=run_at), declared)
    assert "dagster/column_schema" not in metadata
    assert metadata["dagster/row_count"] == 1 and "| a | 2024-Q1 |" in metadata["preview"].value
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    _fct_submission_table(other, ', "legacy_note" varchar')
    metadata = _metadata(other, model, 1, ModelRun(other, "2024-Q1", now=run_at), declared)
    columns = [(c.name, c.type) for c in metadata["dagster/column_schema"].columns]
    assert columns == [(n, t) for n, t, *_ in other.execute("describe fct_submission").fetchall()]
    assert columns[-1] == ("legacy_note", "VARCHAR")
    # without a declared schema, the table's columns, always
    assert "dagster/column_schema" in _metadata(same, model, 1, ModelRun(same, "2024-Q1", now=run_at))


def test_every_model_declares_its_columns_with_the_published_meaning():
    """Every model's asset declares its columns: the published model's (types and meaning, in
    English with the Vietnamese term) for the tables it documents; the `create table` of a Python
    model; the columns a SQL model's select binds to over the declared tables."""
    from dagster import AssetKey

    from assets.factory import declared_schemas, model_assets
    from pipelines.models import all_models, topological

    declared = declared_schemas(list(topological(all_models().values())))
    assert [name for name, schema in declared.items() if schema is None] == []
    specs = {key.to_user_string(): spec for assets in model_assets() for key, spec in assets.specs_by_key.items()}
    assert set(specs) == set(declared)
    for name, spec in specs.items():
        assert spec.metadata["dagster/column_schema"] == declared[name], name
    submission = {c.name: c for c in specs["fct_submission"].metadata["dagster/column_schema"].columns}
    assert submission["submission_id"].type == "varchar"
    assert submission["submission_id"].description.endswith("[mã báo cáo]")
    alert = {c.name for c in specs["fct_alert"].metadata["dagster/column_schema"].columns}
    assert "act_by_email" in alert  # in the working table, not published (personal data): declared too
    # a Python model's create table, and a SQL model's select (no file writes these columns down)
    raw = {c.name: c.type for c in declared["raw_submission"].columns}
    assert raw["submission_id"] == "VARCHAR" and raw["received_at"] == "TIMESTAMP WITH TIME ZONE"
    staged = [c.name for c in declared["stg_value"].columns]
    assert staged[:3] == ["submission_id", "partition_key", "code"]
    assert AssetKey("stg_value") in {key for assets in model_assets() for key in assets.keys}


def test_a_sql_model_reading_a_table_of_unknown_columns_declares_none(tmp_path):
    """A select DuckDB cannot bind over the declared tables (it reads a table nobody declares)
    declares no columns: its materializations then carry the built table's."""
    from assets.factory import declared_schemas
    from pipelines.models import all_models

    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "stg_thing.sql").write_text(
        "-- description: One row per thing.\n-- grain: thing_id\n-- partition: quarter\n"
        "select thing_id, partition_key from somewhere_else where partition_key = $partition_key\n",
        encoding="utf-8",
    )
    models = all_models(tmp_path)
    assert declared_schemas(list(models.values())) == {"stg_thing": None}


def test_a_documented_type_duckdb_does_not_know_declares_no_columns(monkeypatch):
    """A type in sql/published/model.yaml that DuckDB cannot create (a typo; tests/test_model_docs.py
    checks the shipped ones) declares no columns, and the definitions still load: the
    materializations then carry the built table's."""
    import copy

    from assets.factory import declared_schemas
    from pipelines import model_docs
    from pipelines.models import all_models

    broken = copy.deepcopy(model_docs.load_model())
    (table,) = [t for t in model_docs.objects(broken) if t["name"] == "fct_submission"]
    table["columns"][0]["type"] = "varchr"
    monkeypatch.setattr(model_docs, "load_model", lambda: broken)
    models = all_models()
    declared = declared_schemas([models["fct_submission"], models["fct_alert"]])
    assert declared["fct_submission"] is None and declared["fct_alert"] is not None
