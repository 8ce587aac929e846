"""The documented published model (sql/published/model.yaml): every published table, view and
column has an entry, the comments and views are in the published file, the views work when the
file is opened directly (DuckDB command line), and `describe` prints types and comments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines import model_docs, schema
from pipelines.publish import _quote, published_columns, published_tables
from pipelines.warehouse import Warehouse
from tests.conftest import REPO, Tracing, fill_an_empty_quarter

DUCKDB_CLI = Path(sys.executable).parent / "duckdb"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_published(root: Path, catalog) -> tuple[Path, Path]:
    """A working database with every curated table (an empty quarter; the dimensions from the
    catalog), and its published file built as publish() does: attach, copy, document, detach."""
    work, target = root / "work.duckdb", root / "cchc.duckdb"
    with Warehouse(work).connect() as con:
        fill_an_empty_quarter(con, catalog)
        con.execute(f"attach {_literal(str(target))} as publish_target")
        for table in published_tables(con):
            columns = ", ".join(_quote(c) for c in published_columns(con)[table])
            con.execute(f"create table publish_target.{_quote(table)} as select {columns} from main.{_quote(table)}")
        con.execute("create table publish_target.publish_log as select * from main.publish_log")
        before = con.execute("select current_database()").fetchone()[0]
        model_docs.document(con, "publish_target")
        assert con.execute("select current_database()").fetchone()[0] == before  # the default catalog is restored
        con.execute("checkpoint publish_target")
        con.execute("detach publish_target")
    return work, target


@pytest.fixture(scope="module")
def published(tmp_path_factory, catalog) -> Path:
    return build_published(tmp_path_factory.mktemp("model"), catalog)[1]


def _published_objects(path: Path) -> dict[str, dict]:
    return schema.read_model(path, curated_only=False)


def test_the_data_dictionary_is_generated_from_the_model():
    text = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert text == model_docs.render_markdown(model_docs.load_model()), (
        "docs/data_dictionary.md is out of date with sql/published/model.yaml: run python -m pipelines.model_docs"
    )
    assert "Generated from `sql/published/model.yaml` by `python -m pipelines.model_docs`" in text
    check = subprocess.run([sys.executable, "-m", "pipelines.model_docs", "--check"], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_every_published_table_view_and_column_has_an_entry(published):
    model = {t["name"]: t for t in model_docs.objects(model_docs.load_model(), published_only=True)}
    objects = _published_objects(published)
    assert {"fct_indicator_value", "v_indicator_latest", "v_resubmission_change", "publish_log"} <= set(objects)
    missing = [name for name in objects if name not in model]
    missing += [
        f"{name}.{c['name']}"
        for name, entry in objects.items()
        if name in model
        for c in entry["columns"]
        if c["name"] not in {d["name"] for d in model_docs.columns(model[name], published_only=True)}
    ]
    assert missing == [], f"add these to sql/published/model.yaml: {missing}"
    # and no entry describes something the published file does not have, with another type
    stale, wrong_type = [], []
    for name, table in model.items():
        if name not in objects:
            stale.append(name)
            continue
        actual = {c["name"]: c["type"] for c in objects[name]["columns"]}
        for column in model_docs.columns(table, published_only=True):
            if column["name"] not in actual:
                stale.append(f"{name}.{column['name']}")
            elif model_docs.normal_type(actual[column["name"]]) != column["type"]:
                wrong_type.append(f"{name}.{column['name']}: {column['type']} in the YAML, {actual[column['name']]} in the file")
    assert stale == [] and wrong_type == []
    kinds = {name: entry["kind"] for name, entry in objects.items()}
    assert all(kinds[name] == table.get("kind", "table") for name, table in model.items())


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_private_data_is_documented_but_not_published(published):
    objects = _published_objects(published)
    model = model_docs.load_model()
    unpublished = [t["name"] for t in model_docs.objects(model) if not t.get("published", True)]
    assert set(unpublished) == {"dim_contact", "notification_log"} and not set(unpublished) & set(objects)
    alert = {c["name"] for c in objects["fct_alert"]["columns"]}
    assert not {"act_by_email", "par_office_email"} & alert


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_every_table_view_and_column_carries_its_comment(published):
    model = {t["name"]: t for t in model_docs.objects(model_docs.load_model(), published_only=True)}
    objects = _published_objects(published)
    for name, entry in objects.items():
        assert entry["comment"] == model_docs.table_comment(model[name]), name
        expected = {c["name"]: model_docs.column_comment(c) for c in model[name]["columns"]}
        for column in entry["columns"]:
            assert column["comment"] == expected[column["name"]], f"{name}.{column['name']}"
    agency = {c["name"]: c["comment"] for c in objects["dim_agency"]["columns"]}
    assert agency["org_unit_code"] == 'Code, e.g. TD-XA-LIEUTU (the workbook\'s "Mã đơn vị") [mã đơn vị]'
    assert objects["dim_agency"]["comment"].startswith("Org units (Danh mục cơ quan, đơn vị). Grain: one row per org unit")


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_a_publish_onto_the_last_file_rewrites_only_the_comments_that_differ(tmp_path, catalog):
    """The next publish starts from a copy of the last file: a table rebuilt whole (its comments
    gone) and a comment that went stale get theirs again; the others are left as they are."""
    work, target = build_published(tmp_path, catalog)
    with Warehouse(work).connect() as con:
        con.execute(f"attach {_literal(str(target))} as publish_target")
        con.execute("create or replace table publish_target.fct_alert as select * from publish_target.fct_alert")
        con.execute("comment on table publish_target.dim_agency is 'stale'")
        con.execute("comment on column publish_target.dim_agency.name_vi is 'stale'")
        statements: list[str] = []
        traced = Tracing(con, statements)
        model_docs.document(traced, "publish_target", {"2024-Q1"})
        con.execute("detach publish_target")
    (batch,) = [s for s in statements if s.startswith("comment on")]
    commented = {re.match(r'comment on (?:table|view|column) "([a-z_]+)"', line).group(1) for line in batch.split(";\n")}
    # the views are created again each time (their comments with them); the rest kept theirs
    assert commented == {"fct_alert", "dim_agency"} | set(model_docs.view_names(model_docs.load_model()))
    model = {t["name"]: t for t in model_docs.objects(model_docs.load_model(), published_only=True)}
    for name, entry in _published_objects(target).items():
        assert entry["comment"] == model_docs.table_comment(model[name]), name
        expected = {c["name"]: model_docs.column_comment(c) for c in model[name]["columns"]}
        assert {c["name"]: c["comment"] for c in entry["columns"]} == {c["name"]: expected[c["name"]] for c in entry["columns"]}


def test_views_and_publish_time_tables_each_have_one_sql_file_and_an_entry():
    model = model_docs.load_model()
    views = set(model_docs.view_names(model))
    files = {p.stem for p in model_docs.VIEWS_DIR.glob("*.sql")}
    assert views == files and all(v.startswith("v_") for v in views)
    assert len(views) >= 4
    names = {t["name"] for t in model_docs.objects(model, published_only=True)}
    assert set(model_docs.publish_time_tables()) <= names
    for name in views:
        sql = model_docs.view_sql(name)
        assert "select * from final" in sql and "publish_target" not in sql


@pytest.mark.slow  # builds and publishes a whole database: the full tier
@pytest.mark.skipif(not DUCKDB_CLI.exists(), reason=f"the DuckDB command line is not installed at {DUCKDB_CLI}")
def test_views_work_when_the_published_file_is_opened_directly(published):
    for name in model_docs.view_names(model_docs.load_model()):
        out = subprocess.run(
            [str(DUCKDB_CLI), "-readonly", str(published), "-csv", "-c", f"select * from {name} limit 1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and "Error" not in out.stderr, (name, out.stderr)
        assert out.stdout.splitlines()[0].split(",")[0]  # the header row: the view bound its tables


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_views_are_stored_unqualified(published):
    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = con.execute("select view_name, sql from duckdb_views() where not internal").fetchall()
    finally:
        con.close()
    assert len(rows) >= 4 and all("publish_target" not in sql for _, sql in rows)


def test_document_refuses_to_run_with_the_target_as_default(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    try:
        with pytest.raises(ValueError, match="already"):
            model_docs.document(con, "x")
    finally:
        con.close()


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_describe_reads_types_and_comments(published):
    described = schema.describe(published)
    types = {t for columns in described.values() for t in (c["type"] for c in columns)}
    assert "NULL" not in types and "FLOAT" not in types and "DOUBLE" in types
    assert {"TIMESTAMP WITH TIME ZONE", "VARCHAR[]", "BIGINT", "BOOLEAN", "DATE"} <= types
    assert "v_reporting_rate" in described
    text = schema.render(published)
    assert "fct_indicator_value (table) — Indicator values (Giá trị chỉ số). Grain:" in text
    assert "v_reporting_rate (view)" in text
    assert "scope" in text and "[phạm vi tổng hợp]" in text
    as_json = json.loads(schema.render(published, as_json=True))
    assert as_json["dim_period"]["columns"][0]["comment"]
    # the command line, as an operator runs it
    out = subprocess.run(
        [sys.executable, "-m", "pipelines", "describe", "--json", "--database", str(published)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    printed = json.loads(out.stdout)
    columns = printed["fct_indicator_value"]
    columns = columns["columns"] if isinstance(columns, dict) else columns
    value = next(c for c in columns if c["name"] == "value")
    assert value["type"] == "DOUBLE" and value["comment"].startswith("numerator / denominator")


def test_the_docs_warn_against_summing_across_scopes():
    model = {t["name"]: t for t in model_docs.objects(model_docs.load_model())}
    for name in ("fct_indicator_value", "fct_target_scorecard", "v_indicator_latest", "v_reporting_rate"):
        scope = next(c for c in model[name]["columns"] if c["name"] == "scope")
        assert "`level`" in scope["description"]
    for name in ("fct_indicator_value", "fct_target_scorecard", "fct_reporting_rate", "v_reporting_rate", "v_indicator_latest"):
        assert "never sum" in model[name]["description"].lower(), name
    text = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert "Scopes: never sum across them" in text


def test_grain_violations_counts_duplicates_and_nulls_and_skips_a_slice_with_no_row():
    """Both counts (duplicate-key rows, null keys where a key part is required) in one statement; a
    slice a publish replaced no row of ('false') has no statement (nothing to look at)."""
    import duckdb

    from pipelines.model_docs import grain_violations_sql

    def grain_violations(con, *args, **kwargs):
        sql = grain_violations_sql(*args, **kwargs)
        if sql is None:
            return None
        cursor = con.execute(sql)
        return dict(zip([column for column, *_ in cursor.description], cursor.fetchone(), strict=True))

    con = duckdb.connect()
    con.execute("create table t (period_code varchar, unit varchar, note varchar)")
    con.execute(
        "insert into t values ('2024-Q1', 'A', 'x'), ('2024-Q1', 'A', 'y'), ('2024-Q1', 'B', null),"
        " ('2024-Q1', null, 'z'), ('2024-Q2', 'A', null)"
    )
    assert grain_violations(con, "memory", "t", ["period_code", "unit"]) == {"duplicate_rows": 2, "null_key_rows": 1}
    assert grain_violations(con, "memory", "t", ["period_code", "unit?"]) == {"duplicate_rows": 2, "null_key_rows": 0}
    in_q2 = grain_violations(con, "memory", "t", ["period_code", "unit"], where="period_code = '2024-Q2'")
    assert in_q2 == {"duplicate_rows": 0, "null_key_rows": 0}
    assert grain_violations(None, "memory", "t", ["period_code", "unit"], where="false") is None


def test_the_model_is_read_once_while_its_file_is_unchanged(tmp_path):
    """Every publish reads it: the same object while the file (size, modification time) and the
    model files are unchanged; the file as it is now once it changes."""
    import os

    path = tmp_path / "model.yaml"
    path.write_text(model_docs.MODEL_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    first = model_docs.load_model(path)
    assert model_docs.load_model(path) is first
    assert first["sections"] and first["title"] == model_docs.load_model()["title"]
    path.write_text(
        path.read_text(encoding="utf-8").replace("title: Data dictionary", "title: Từ điển dữ liệu", 1), encoding="utf-8"
    )
    os.utime(path, ns=(1, 1))  # even with an older modification time
    changed = model_docs.load_model(path)
    assert changed is not first and changed["title"].startswith("Từ điển dữ liệu")
    assert model_docs.load_model(path) is changed
