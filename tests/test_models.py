"""Models defined once: one SQL file per table gives its asset, dependencies, grain and checks."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, materialize

from assets.factory import model_assets, steps
from pipelines.definitions import ALL_ASSETS, defs
from pipelines.model_docs import grain_keys
from pipelines.models import GRAIN_CHECK, ModelError, ModelRun, all_models, parse_model, run_checks, tables_read
from pipelines.periods import LOCAL_TZ
from pipelines.publish import NOT_PUBLISHED
from pipelines.resources import build_resources
from tests.conftest import REPO, failing_blocking_checks, make_form

MODELS = all_models()
GRAPH = defs.get_repository_def().asset_graph


def test_every_model_file_is_an_asset_of_the_same_name_with_the_dependencies_its_sql_reads():
    files = [
        p for layer in ("dimensions", "raw", "staging", "intermediate", "curated") for p in (REPO / "sql" / layer).glob("*.sql")
    ]
    assert len(MODELS) == len(files) == 29
    for name, model in MODELS.items():
        node = GRAPH.get(AssetKey(name))
        assert node.group_name == model.layer, name
        assert {key.to_user_string() for key in node.parent_keys} == set(model.deps), name
        assert node.description == model.description
        assert model.path == REPO / "sql" / model.layer / f"{name}.sql"


def test_no_dependency_list_is_written_by_hand():
    for path in (REPO / "assets").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"deps\s*=\s*\[\s*[\"']", text), f"{path.name} lists dependencies by hand"


def test_dependencies_come_from_the_tables_the_sql_reads():
    sql = "with a as (select * from raw_value) select * from a join dim_agency as d on true, (select 1 from stg_value)"
    assert tables_read(sql) == {"raw_value", "dim_agency", "stg_value"}
    assert MODELS["fct_reporting_rate"].deps == {"fct_reporting_completeness"}
    # a lagged input (earlier periods of a table built later) is read but is not a dependency
    finding = MODELS["int_finding"]
    assert "int_element_value" in finding.reads and "int_element_value" not in finding.deps
    assert finding.deps == {"raw_submission", "raw_value", "raw_read_finding"}


def test_every_model_states_a_grain_of_real_columns():
    """The header's grain names columns of the table (checked on the demo's tables in test_pipeline too)."""
    for model in MODELS.values():
        assert model.grain, model.name
        if model.ddl:
            declared = set(re.findall(r"^\s+([a-z_][a-z0-9_]*)\s+[a-z]", model.ddl, re.M))
            assert set(model.key_columns) <= declared, model.name


def test_every_published_table_has_a_blocking_grain_check():
    published = {n for n, m in MODELS.items() if m.published_name and n not in NOT_PUBLISHED}
    assert {"dim_agency", "fct_submission", "fct_target_scorecard", "fct_validation_finding"} <= published
    for name in published:
        key = AssetCheckKey(AssetKey(name), GRAIN_CHECK)
        assert key in GRAPH.asset_check_keys, name
        assert GRAPH.get_check_spec(key).blocking, name
    # the tables built at publish time (not models) are checked in the new file before the switch
    assert {"fct_submission_value", "publish_log"} <= set(grain_keys())
    assert published <= set(grain_keys())


def test_error_checks_block_and_warnings_do_not():
    for name, model in MODELS.items():
        for check in model.checks:
            spec = GRAPH.get_check_spec(AssetCheckKey(AssetKey(name), check.name))
            assert spec.blocking == (check.severity == "error"), (name, check.name)
    assert GRAPH.get_check_spec(AssetCheckKey(AssetKey("fct_indicator_value"), "org_unit_code_in_dim_agency")).blocking


def test_a_quarter_runs_in_one_step_and_the_catalog_in_another():
    built = steps()
    assert list(built) == ["dimensions", "quarter"]
    assert len(ALL_ASSETS) == 4  # and the delivery and the publish
    assert {m.layer for m in built["dimensions"]} == {"dimensions"}
    assert {m.layer for m in built["quarter"]} == {"raw", "staging", "intermediate", "curated"}
    # in dependency order: every model after the models it reads (within the step)
    order = [m.name for m in built["quarter"]]
    for position, model in enumerate(built["quarter"]):
        assert all(order.index(dep) < position for dep in model.deps if dep in order), model.name
    # the external-values tables are built by one function: once, at the earliest of them (raw)
    first = min(order.index(name) for name in ("raw_external_value", "fct_external_value", "fct_external_finding"))
    assert order[first] == "raw_external_value"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("-- grain: a\n-- partition: quarter\nselect 1 as a", "no '-- description: ...' line"),
        ("-- description: x\n-- partition: quarter\nselect 1 as a", "no '-- grain: ...' line"),
        ("-- description: x\n-- grain: a\n-- partition: weekly\nselect 1 as a", "partition 'weekly'"),
        ("-- description: x\n-- grain: a\n-- partition: quarter\n-- refs: a -> b.c\nselect 1 as a", ":4: unknown header field"),
        ("-- description: x\n-- grain: a\n-- partition: quarter\n-- references: a to b\nselect 1 as a", ":4: write 'references"),
        (
            "-- description: x\n-- grain: a\n-- partition: quarter\n-- check: a | fatal | q/x | d\nselect 1 as a",
            ":4: write 'check",
        ),
        ("-- description: x\n-- grain: a\n-- partition: quarter\n", "needs its select"),
    ],
)
def test_a_broken_header_names_the_file_and_line(tmp_path, header, problem):
    path = tmp_path / "curated" / "fct_broken.sql"
    path.parent.mkdir()
    path.write_text(header, encoding="utf-8")
    with pytest.raises(ModelError) as error:
        parse_model(path)
    assert str(path) in str(error.value) and problem in str(error.value)


@pytest.mark.parametrize(
    "ending",
    ["\n-- an edit's note at the end\n", "  -- the last line's own comment\n", ";\n-- after the semicolon\n\n", ";"],
)
def test_a_comment_at_the_end_of_a_model_is_only_a_comment(tmp_path, ending):
    """A user's comment after a model's select (on its last line, or lines after it) does not
    swallow what the pipeline wraps around the select: the model builds and its rows are right."""
    from pipelines.warehouse import replace_from_query

    path = tmp_path / "intermediate" / "int_x.sql"
    path.parent.mkdir()
    head = "-- description: x\n-- grain: agency_code\n-- partition: quarter\n"
    path.write_text(head + "select 'A' as agency_code, $partition_key as partition_key" + ending, encoding="utf-8")
    model = parse_model(path)
    assert model.body.endswith("partition_key\n") or model.body.endswith("comment\n")
    con = duckdb.connect()
    for _ in range(2):  # created, then written again
        rows = replace_from_query(con, model.name, model.body, {"partition_key": "2024-Q1"}, {"partition_key": "2024-Q1"})
        assert rows == 1
    assert con.execute("select * from int_x").fetchall() == [("A", "2024-Q1")]


def test_a_model_may_not_read_a_later_layer(tmp_path):
    root = tmp_path / "sql"
    for layer, name, sql in (
        ("staging", "stg_a", "select * from int_b"),
        ("intermediate", "int_b", "select 1 as k"),
    ):
        (root / layer).mkdir(parents=True, exist_ok=True)
        (root / layer / f"{name}.sql").write_text(f"-- description: x\n-- grain: k\n-- partition: table\n{sql}\n")
    with pytest.raises(ModelError, match="reads int_b, a later layer"):
        all_models(root)


def test_grain_and_reference_checks_find_their_offenders():
    """fct_plan_task_status: one row per submission_id x sheet x row_number; agency_code -> dim_agency."""
    model = MODELS["fct_plan_task_status"]
    con = duckdb.connect()
    con.execute("create table dim_agency as select * from (values ('A'), ('B')) as t(org_unit_code)")
    con.execute(
        "create table fct_plan_task_status as select * from (values "
        "('s1', 'NV', 7, '2024-Q1', 'A'), ('s1', 'NV', 7, '2024-Q1', 'B'), (null, 'NV', 8, '2024-Q1', 'Z'),"
        " ('s3', 'NV', 7, '2024-Q2', 'Q'), ('s4', 'NV', 9, '2024-Q1', null)) "
        "as t(submission_id, sheet, row_number, partition_key, agency_code)"
    )
    outcomes = {o.name: o for o in run_checks(model, ModelRun(con, "2024-Q1"))}
    grain = outcomes[GRAIN_CHECK]
    assert not grain.passed and grain.severity == "error"
    assert sorted(grain.rows["problem"]) == ["duplicate key", "null in key"] and grain.count == 3
    refs = outcomes["agency_code_in_dim_agency"]
    # 'Z' is unknown; 'Q' is another quarter's row (not this run's slice); a null code is not checked
    assert not refs.passed and refs.rows["agency_code"].tolist() == ["Z"]
    con.execute("delete from fct_plan_task_status where submission_id is null or agency_code = 'B'")
    assert all(o.passed for o in run_checks(model, ModelRun(con, "2024-Q1")))


def test_a_workbook_naming_an_unknown_agency_stops_no_one(tmp_path, catalog):
    """It is rejected and kept on record (fct_submission, fct_alert keep the code it declared); no
    blocking check fails, so everyone else's quarter is built and published."""
    from pipelines import steps as pipeline_steps
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    make_form(raw / "2024-Q1" / "NOPE-UNIT_2024-Q1.xlsx", "NOPE-UNIT", "Quý I/2024", {"HSO.01": 10})
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "XYZ.99": 5})
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        pipeline_steps.publish_dimensions(con, catalog)
        pipeline_steps.build_quarter(con, catalog, "2024-Q1", dt.datetime(2024, 4, 20, tzinfo=LOCAL_TZ), raw_dir=raw)
        statuses = dict(con.execute("select agency_code, validation_status from fct_submission").fetchall())
        failed = failing_blocking_checks(con, catalog)
    assert statuses == {"NOPE-UNIT": "rejected", "TD-XA-LIEUTU": "accepted"}
    assert failed == []


def _resources(tmp_path: Path, raw: Path) -> dict:
    return build_resources(
        {
            "CCHC_DATABASE": str(tmp_path / "published.duckdb"),
            "CCHC_RAW_DIR": str(raw),
            "CCHC_CATALOG_DIR": str(REPO / "catalog"),
            "CCHC_MAIL_ENABLED": "false",
            "CCHC_AS_OF": "2024-04-20T09:00:00+07:00",
        }
    )


def test_one_asset_materialises_alone_for_a_partition(tmp_path, catalog):
    """dg.materialize with a selection: the step builds only the selected model (and its checks)."""
    raw = tmp_path / "raw"
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "HSO.02": 4})
    resources = _resources(tmp_path, raw)
    assets = model_assets()
    result = materialize(assets, resources=resources, selection=["raw_submission", "stg_submission"], partition_key="2024-Q1")
    assert result.success
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert built == {"raw_submission", "stg_submission"}
    # the row count and preview on the partition's materialization, not copied into the step's
    # output events (stored twice otherwise); the columns are the asset's declared ones, on its
    # definition, and the materialization does not repeat them
    specs = {key.to_user_string(): spec for a in assets for key, spec in a.specs_by_key.items()}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        assert materialization.partition == "2024-Q1"
        assert materialization.metadata["dagster/row_count"].value == 1
        assert "dagster/column_schema" not in materialization.metadata
        declared = specs[event.asset_key.to_user_string()].metadata["dagster/column_schema"]
        assert "submission_id" in [c.name for c in declared.columns]
        assert "TD-XA-LIEUTU" in materialization.metadata["preview"].value
    outputs = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert outputs and all(not e.event_specific_data.metadata for e in outputs)
    # raw and staging tables document their grain but are not checked on every run (dim_ and fct_ are)
    assert result.get_asset_check_evaluations() == []
    with resources["warehouse"].warehouse().connect() as con:
        assert con.execute("select agency_code from stg_submission where partition_key = '2024-Q1'").fetchall() == [
            ("TD-XA-LIEUTU",)
        ]


def test_a_failing_blocking_check_stops_what_depends_on_the_table(tmp_path):
    root = _curated_models(
        tmp_path,
        fct_twice=("One row per k (but the query repeats it).", "select * from (values (1), (1)) as t(k)"),
        fct_after=("One row per k, after fct_twice.", "select distinct k from fct_twice"),
    )
    result = _quarter_run(root, tmp_path)  # the quarter's step, subset to the curated models
    assert not result.success
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert built == {"fct_twice"}
    (failed,) = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed.asset_check_key == AssetCheckKey(AssetKey("fct_twice"), GRAIN_CHECK)


def _quarter_run(root: Path, tmp_path: Path, *groups: str):
    """The quarter's step for 2024-Q1, subset to some layers (the curated models by default), its
    failures returned, not raised."""
    return materialize(
        model_assets(root),
        selection=AssetSelection.groups(*(groups or ("curated",))),
        resources=_resources(tmp_path, tmp_path / "raw"),
        partition_key="2024-Q1",
        raise_on_error=False,
    )


def _curated_models(tmp_path: Path, **models: tuple[str, str]) -> Path:
    """A copy of sql/ whose curated layer is the given models: {name: (description, select)}, each
    one row per k, a whole-table model."""
    root = tmp_path / "sql"
    shutil.copytree(REPO / "sql", root)
    for path in (root / "curated").glob("*.sql"):
        path.unlink()
    for name, (description, sql) in models.items():
        (root / "curated" / f"{name}.sql").write_text(f"-- description: {description}\n-- grain: k\n-- partition: table\n{sql}\n")
    return root


def _two_curated_models(tmp_path: Path, second_sql: str) -> Path:
    """fct_first (two rows) and fct_second (which reads it, with `second_sql`)."""
    return _curated_models(
        tmp_path,
        fct_first=("One row per k.", "select * from (values (1), (2)) as t(k)"),
        fct_second=("One row per k, after fct_first.", second_sql),
    )


def test_the_next_model_is_built_while_the_step_records_the_last_one(tmp_path, monkeypatch):
    """A step's models are built in a thread of their own, one after the other, while Dagster writes
    the events of those built before (their materializations, their checks' evaluations): a model's
    checks run before the next model is built, so a blocking failure still stops what depends on it
    (test above)."""
    import threading

    from dagster import DagsterInstance

    import assets.factory as factory

    root = _two_curated_models(tmp_path, "select k from fct_first")
    first_started, second_started = threading.Event(), threading.Event()
    seen: dict = {}
    real_build = factory.build

    def build(model, run, results=None):
        seen[model.name] = threading.current_thread().name
        if model.name == "fct_first":
            first_started.set()
        if model.name == "fct_second":
            second_started.set()
        return real_build(model, run, results)

    real_handle = DagsterInstance.handle_new_event

    def handle(self, event, *args, **kwargs):
        dagster_event = event.dagster_event
        if dagster_event and dagster_event.is_step_materialization and dagster_event.asset_key == AssetKey("fct_first"):
            # the next build has begun before this event is written (sequential builds would wait here)
            seen["second started before the first's materialization was written"] = second_started.wait(30)
        if dagster_event and dagster_event.is_step_materialization and dagster_event.asset_key.path[-1].startswith("raw_"):
            # the raw layer's events wait for the builder thread to start
            seen.setdefault("the builder started before the raw layer's events were written", set()).add(first_started.wait(30))
        return real_handle(self, event, *args, **kwargs)

    monkeypatch.setattr(factory, "build", build)
    monkeypatch.setattr(DagsterInstance, "handle_new_event", handle)
    (tmp_path / "raw").mkdir()
    result = _quarter_run(root, tmp_path, "raw", "curated")
    assert result.success
    assert seen["second started before the first's materialization was written"]
    assert seen["the builder started before the raw layer's events were written"] == {True}
    assert {seen["fct_first"], seen["fct_second"]} <= {"cchc-models-1", "cchc-models-2"}  # the builders' threads
    # the raw layer (which may fork its parse processes) in the step's own thread, before the builder starts
    raw = [name for name in seen if name.startswith("raw_")]
    assert raw and {seen[name] for name in raw} == {threading.main_thread().name}
    built = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
    assert built[-2:] == ["fct_first", "fct_second"] and set(built[:-2]) == {m for m in all_models(root) if m.startswith("raw_")}
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with _resources(tmp_path, tmp_path / "raw")["warehouse"].warehouse().connect() as con:
        assert con.execute("select k from fct_second order by k").fetchall() == [(1,), (2,)]


def test_models_that_do_not_depend_on_each_other_are_built_side_by_side(tmp_path, monkeypatch):
    """Two builder threads, each on its own connection: fct_left and fct_right (neither built from
    the other) are built at the same time, before fct_alone (which comes first in dependency order,
    but nothing is built from it: the longest chains go first); fct_both, built from both, only once
    both are built (and their blocking checks have passed), and it reads what both committed."""
    import threading

    import assets.factory as factory

    root = _curated_models(
        tmp_path,
        fct_left=("One row per k.", "select * from (values (1), (2)) as t(k)"),
        fct_right=("One row per k.", "select * from (values (2), (3)) as t(k)"),
        fct_both=("One row per k of both.", "select k from fct_left union select k from fct_right"),
        fct_after=("One row per k, after fct_both.", "select k from fct_both"),
        fct_alone=("One row per k, from nothing else.", "select * from (values (9)) as t(k)"),
    )
    started = {name: threading.Event() for name in ("fct_left", "fct_right")}
    seen: dict = {}
    real_build = factory.build

    def build(model, run, results=None):
        seen.setdefault("order", []).append(model.name)
        if model.name in started:
            started[model.name].set()
            other = "fct_right" if model.name == "fct_left" else "fct_left"
            # each waits for the other to have started: one builder alone would wait out the timeout
            seen[f"{model.name} saw {other} under way"] = started[other].wait(30)
            seen[model.name] = (threading.current_thread().name, id(run.con))
        return real_build(model, run, results)

    monkeypatch.setattr(factory, "BUILDERS", 2)
    monkeypatch.setattr(factory.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(factory, "build", build)
    result = _quarter_run(root, tmp_path)
    assert result.success
    assert seen["fct_left saw fct_right under way"] and seen["fct_right saw fct_left under way"]
    assert seen["fct_left"][0] != seen["fct_right"][0] and seen["fct_left"][1] != seen["fct_right"][1]
    order = seen["order"]
    assert set(order[:2]) == {"fct_left", "fct_right"} and order.index("fct_both") < order.index("fct_after")
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {
        "fct_left", "fct_right", "fct_both", "fct_after", "fct_alone",
    }  # fmt: skip
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with _resources(tmp_path, tmp_path / "raw")["warehouse"].warehouse().connect() as con:
        assert con.execute("select k from fct_after order by k").fetchall() == [(1,), (2,), (3,)]
    assert not [t for t in threading.enumerate() if t.name.startswith("cchc-")]


def test_stop_builds_interrupts_the_builds_a_suspended_step_left_running(tmp_path, monkeypatch):
    """A step that an interruption left suspended (Dagster had it waiting to write an event) does not
    stop its builders itself: `stop_builds`, which the command calls after each run, interrupts the
    statement under way on each builder's connection, starts no further model, and waits for the
    threads, so the database can be closed at once."""
    import queue
    import threading

    import assets.factory as factory

    root = _curated_models(
        tmp_path,
        fct_slow=("One row per k.", "select * from (values (1)) as t(k)"),
        fct_after=("One row per k, after fct_slow.", "select k from fct_slow"),
    )
    models = [m for m in factory.steps(root)["quarter"] if m.layer == "curated"]
    started, outcome = threading.Event(), []

    def build(model, run, results=None):
        started.set()
        try:  # a statement that runs for minutes
            run.con.execute("select count(*) from range(100000) as a, range(100000) as b where a.range * b.range = 7").fetchall()
        except duckdb.InterruptException:
            outcome.append(model.name)
            raise

    monkeypatch.setattr(factory, "build", build)
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    try:
        connections = [con, con.cursor()]
        built: queue.Queue = queue.Queue()
        builders = factory._Builders(
            models, ModelRun(con, partition_key="2024-Q1"), {m.name: (set(), set()) for m in models}, {}, set(),
            threading.Event(), connections, built,
        )  # fmt: skip
        builders.start()
        assert started.wait(30)
        factory.stop_builds()
        assert not builders.alive() and not factory._RUNNING
        assert outcome == ["fct_slow"]  # interrupted; fct_after, built from it, never started
        items = [built.get(timeout=5) for _ in range(2)]
        assert isinstance(items[0][1], duckdb.InterruptException) and items[1] is None
    finally:
        con.close()


def test_stop_builds_from_a_builders_own_thread_waits_for_the_others_only(tmp_path, monkeypatch):
    """The garbage collector may finish an abandoned step (and so stop its builders) in one of the
    builders' own threads: the other builder's statement is interrupted and waited for, the calling
    one is not joined (a thread cannot join itself) and ends after its model."""
    import queue
    import threading

    import assets.factory as factory

    root = _curated_models(
        tmp_path,
        fct_slow=("One row per k.", "select * from (values (1)) as t(k)"),
        fct_stopper=("One row per k.", "select * from (values (2)) as t(k)"),
    )
    models = [m for m in factory.steps(root)["quarter"] if m.layer == "curated"]
    slow_started, seen = threading.Event(), {}

    def build(model, run, results=None):
        if model.name == "fct_slow":
            slow_started.set()
            try:
                run.con.execute("select count(*) from range(100000) as a, range(100000) as b where a.range * b.range = 7")
            except duckdb.InterruptException:
                seen["fct_slow"] = "interrupted"
                raise
        else:
            assert slow_started.wait(30)
            factory.stop_builds()  # from this builder's own thread
            seen["stopper"] = "returned"
        return 0

    monkeypatch.setattr(factory, "build", build)
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    try:
        built: queue.Queue = queue.Queue()
        builders = factory._Builders(
            models, ModelRun(con, partition_key="2024-Q1"), {m.name: (set(), set()) for m in models}, {}, set(),
            threading.Event(), [con, con.cursor()], built,
        )  # fmt: skip
        builders.start()
        items = []
        while (item := built.get(timeout=60)) is not None:
            items.append(item)
        assert seen == {"fct_slow": "interrupted", "stopper": "returned"}
        assert not builders.alive() and not factory._RUNNING
        assert sorted(type(i[1]).__name__ for i in items) == ["InterruptException", "int"]
    finally:
        con.close()


def test_one_cpu_builds_one_model_at_a_time(tmp_path, monkeypatch):
    """On a machine with one CPU there is one builder: the run's own connection, in order."""
    import threading

    import assets.factory as factory

    root = _curated_models(
        tmp_path,
        fct_left=("One row per k.", "select * from (values (1), (2)) as t(k)"),
        fct_right=("One row per k.", "select * from (values (2), (3)) as t(k)"),
    )
    threads: set[str] = set()
    real_build = factory.build

    def build(model, run, results=None):
        if model.layer == "curated":
            threads.add(threading.current_thread().name)
        return real_build(model, run, results)

    monkeypatch.setattr(factory.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(factory, "build", build)
    assert _quarter_run(root, tmp_path).success
    assert threads == {"cchc-models-1"}


def test_a_failure_in_the_raw_layer_still_reports_what_was_built_before_it(tmp_path, monkeypatch):
    """The raw layer's events are written after its builds: when one of them fails, the models built
    before it are still materialized (in order), the failing one and those after it are not, the
    builder never starts, and the step's failure names the error."""
    import threading

    import assets.factory as factory

    root = _two_curated_models(tmp_path, "select k from fct_first")
    raw = [m.name for m in all_models(root).values() if m.layer == "raw"]
    failing = raw[2]
    real_build = factory.build

    def build(model, run, results=None):
        if model.name == failing:
            raise RuntimeError(f"{failing} could not be built")
        return real_build(model, run, results)

    monkeypatch.setattr(factory, "build", build)
    (tmp_path / "raw").mkdir()
    result = _quarter_run(root, tmp_path, "raw", "curated")
    assert not result.success
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == raw[:2]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"{failing} could not be built" in str(failure.step_failure_data.error)
    assert not [t for t in threading.enumerate() if t.name.startswith("cchc-")]


def test_blocking_checks_run_by_the_builder_the_others_in_the_steps_thread(tmp_path, monkeypatch):
    """A blocking check of a model another model of the step is built from runs in its builder's
    thread right after the build, before that model is built; the other builder goes on meanwhile
    with the models not built from it. Every other check runs in the step's own thread, on its own
    connection, as it writes the model's events (off the builders' path). A blocking failure there
    still fails the step, and the metadata is read there too."""
    import threading

    import assets.factory as factory

    root = _curated_models(
        tmp_path,
        fct_first=("One row per k.", "select * from (values (1), (2)) as t(k)"),
        fct_second=("One row per k, after fct_first.", "select k from fct_first"),
        fct_twice=("One row per k (but the query repeats it).", "select * from (values (1), (1)) as t(k)"),
    )
    assert factory.deferred_checks(list(all_models(root).values())) >= {("fct_second", GRAIN_CHECK), ("fct_twice", GRAIN_CHECK)}
    assert ("fct_first", GRAIN_CHECK) not in factory.deferred_checks(list(all_models(root).values()))
    ran: dict = {}
    order: list[str] = []
    twice_started = threading.Event()
    real_checks, real_build = factory.run_checks, factory.build

    def run_checks(model, run, selected=None):
        if selected:
            ran[model.name] = threading.current_thread().name
        if model.name == "fct_first":
            # fct_twice is not built from fct_first: its build goes on while fct_first is checked
            ran["fct_twice built while fct_first was checked"] = twice_started.wait(30)
        outcomes = real_checks(model, run, selected)
        order.append(f"checked {model.name}")
        return outcomes

    def build(model, run, results=None):
        order.append(f"build {model.name}")
        if model.name == "fct_twice":
            twice_started.set()
        return real_build(model, run, results)

    monkeypatch.setattr(factory, "run_checks", run_checks)
    monkeypatch.setattr(factory, "build", build)
    result = _quarter_run(root, tmp_path)
    assert not result.success  # fct_twice's grain
    assert ran.pop("fct_first").startswith("cchc-models-")
    assert ran == {
        "fct_second": threading.main_thread().name,
        "fct_twice": threading.main_thread().name,
        "fct_twice built while fct_first was checked": True,
    }
    # fct_second is built from fct_first: only once fct_first's blocking check has passed
    assert order.index("checked fct_first") < order.index("build fct_second")
    outcomes = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert outcomes == {("fct_first", GRAIN_CHECK): True, ("fct_second", GRAIN_CHECK): True, ("fct_twice", GRAIN_CHECK): False}
    materialized = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    assert set(materialized) == {"fct_first", "fct_second", "fct_twice"}
    assert materialized["fct_twice"].materialization.metadata["dagster/row_count"].value == 2


def test_a_blocking_failure_stops_what_is_built_from_it_and_from_those(tmp_path):
    """fct_twice's grain fails (in its builder's thread): fct_after (built from it) and fct_last (built from
    fct_after) are not built, the model built from neither is, and no thread is left waiting."""
    import threading

    root = _curated_models(
        tmp_path,
        fct_twice=("One row per k (but the query repeats it).", "select * from (values (1), (1)) as t(k)"),
        fct_after=("One row per k, after fct_twice.", "select distinct k from fct_twice"),
        fct_last=("One row per k, after fct_after.", "select k from fct_after"),
        fct_alone=("One row per k, from nothing else.", "select * from (values (3)) as t(k)"),
    )
    result = _quarter_run(root, tmp_path)
    assert not result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {"fct_twice", "fct_alone"}
    assert [(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed] == [
        ("fct_twice", GRAIN_CHECK)
    ]
    assert not [t for t in threading.enumerate() if t.name.startswith("cchc-")]


def test_a_model_that_fails_while_the_last_one_is_recorded_fails_the_step(tmp_path):
    """A failure in the builder thread reaches the step: the model before it is materialized and
    checked, the failing one is not, and the error names it."""
    root = _two_curated_models(tmp_path, "select k from fct_first join no_such_table using (k)")
    result = _quarter_run(root, tmp_path)
    assert not result.success
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == ["fct_first"]
    assert {e.asset_check_key.asset_key.to_user_string() for e in result.get_asset_check_evaluations()} == {"fct_first"}
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "no_such_table" in str(failure.step_failure_data.error)


def test_a_step_that_stops_early_interrupts_the_build_under_way(tmp_path, monkeypatch):
    """When the step stops while a model is being built (here: writing the events of the model before
    fails), the build's statement is interrupted and its thread ends before the step does: the
    connection is never closed under it. (Without the interrupt the statement below runs for minutes.)"""
    import threading

    import assets.factory as factory

    root = _two_curated_models(
        tmp_path, "select count(*) as k from range(100000) as a, range(100000) as b where a.range * b.range = 7"
    )
    real_events = factory._events

    def events(context, item, *args):
        if item[0].name == "fct_first":
            raise RuntimeError("the events could not be written")
        yield from real_events(context, item, *args)

    interrupted: list[str] = []
    real_build = factory.build

    def build(model, run, results=None):
        try:
            return real_build(model, run, results)
        except duckdb.Error as exc:
            interrupted.append(f"{model.name}: {type(exc).__name__}")
            raise

    monkeypatch.setattr(factory, "_events", events)
    monkeypatch.setattr(factory, "build", build)
    result = _quarter_run(root, tmp_path)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "the events could not be written" in str(failure.step_failure_data.error)
    assert not [t for t in threading.enumerate() if t.name.startswith("cchc-")]
    assert interrupted == ["fct_second: InterruptException"]


def _worked_example() -> tuple[str, str]:
    text = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    section = text[text.index("## Worked example") :]
    (sql,) = re.findall(r"```sql\n(.*?)```", section, re.S)
    name = re.search(r"`sql/curated/(\w+)\.sql`", section).group(1)
    return name, sql


def test_the_worked_example_adds_a_curated_table_with_one_file(tmp_path, catalog):
    """docs/models.md: adding one SQL file adds the asset, its dependencies, its checks and its table."""
    name, sql = _worked_example()
    root = tmp_path / "sql"
    shutil.copytree(REPO / "sql", root)
    (root / "curated" / f"{name}.sql").write_text(sql, encoding="utf-8")
    models = all_models(root)
    assert models[name].deps == {"fct_submission", "dim_agency"} and models[name].layer == "curated"

    # the asset, in the quarter's step (the curated group), after fct_submission, with its checks
    assets = model_assets(root)
    (curated,) = [a for a in assets if AssetKey(name) in a.keys]
    assert AssetKey("fct_submission") in curated.keys
    assert curated.asset_deps[AssetKey(name)] == {AssetKey("fct_submission"), AssetKey("dim_agency")}
    assert {k.name for k in curated.check_keys if k.asset_key == AssetKey(name)} == {GRAIN_CHECK, "agency_code_in_dim_agency"}

    # a real run: two workbooks of one agency (one rejected), one of another
    raw = tmp_path / "raw"
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "HSO.02": 4})
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1_v2.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "HSO.02": 40})
    make_form(raw / "2024-Q1" / "TD-XA-DAIAN2_2024-Q1.xlsx", "TD-XA-DAIAN2", "Quý I/2024", {"HSO.01": 5})
    from pipelines import steps as pipeline_steps
    from pipelines.warehouse import Warehouse

    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        pipeline_steps.publish_dimensions(con, catalog)
        now = dt.datetime(2024, 4, 20, 9, tzinfo=LOCAL_TZ)
        counts = pipeline_steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, root=root)
        assert counts[name] == 2
        rows = con.execute(f"select agency_code, workbooks, accepted, rejected from {name} order by 1").fetchall()
        outcomes = run_checks(models[name], ModelRun(con, "2024-Q1"))
    assert rows == [("TD-XA-DAIAN2", 1, 1, 0), ("TD-XA-LIEUTU", 2, 1, 1)]
    assert all(o.passed for o in outcomes)


@pytest.mark.slow  # several runs or the whole report: the full tier
def test_a_rerun_validates_only_new_workbooks_with_the_workbook_rules(tmp_path, catalog, monkeypatch):
    """Findings of the value, duplicate and compare rules are kept for a workbook validated before
    under the same rules; peers and history are looked at again (the three communes are one cohort:
    pipelines.steps.validate); the result equals a fresh run."""
    import weakref

    from pipelines import steps as pipeline_steps
    from pipelines.validation import RuleEngine
    from pipelines.validation import engine as engine_module
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    folder = raw / "2024-Q1"
    make_form(folder / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "HSO.02": 40})  # rejected
    make_form(folder / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", {"HSO.01": 10, "HSO.02": 4})
    make_form(folder / "TD-XA-DAIAN2_2024-Q1.xlsx", "TD-XA-DAIAN2", "Quý I/2024", {"HSO.01": 5, "HSO.02": -1})  # rejected
    now = dt.datetime(2024, 4, 20, 9, tzinfo=LOCAL_TZ)
    seen: list[set] = []
    validate = RuleEngine.validate
    monkeypatch.setattr(
        RuleEngine, "validate", lambda self, data, known=frozenset(): seen.append(set(known)) or validate(self, data, known)
    )

    def findings(con) -> list:
        return con.execute(
            "select * exclude (partition_key) from int_finding where partition_key = '2024-Q1' order by all"
        ).fetchall()

    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        pipeline_steps.publish_dimensions(con, catalog)
        pipeline_steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        assert seen[0] == set()
        first = findings(con)
        assert {r[2] for r in first} >= {"V_OFWHICH_HSO02", "V_NON_NEGATIVE"}
        make_form(folder / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", {"HSO.01": 10, "HSO.02": 11})  # now broken
        pipeline_steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        unchanged = {
            r[0]
            for r in con.execute("select submission_id from raw_submission where file_name not like 'TD-XA-TAIVAN%'").fetchall()
        }
        assert seen[1] == unchanged  # the unassigned slice has no workbook: nothing to validate there
        again = findings(con)
        # new rules (or new code) invalidate what is on record: new code is a new process, whose
        # rule engines are made anew (new rules are a new catalog object, with its own engine)
        monkeypatch.setattr(RuleEngine, "version", "another")
        monkeypatch.setattr(engine_module, "_ENGINES", weakref.WeakKeyDictionary())
        pipeline_steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed")
        assert seen[2] == set() and findings(con) == again
    with Warehouse(tmp_path / "fresh.duckdb").connect() as con:
        pipeline_steps.publish_dimensions(con, catalog)
        pipeline_steps.build_quarter(con, catalog, "2024-Q1", now, raw_dir=raw, cache_dir=tmp_path / "parsed2")
        assert findings(con) == again
    assert {r[2] for r in again} >= {"V_OFWHICH_HSO02", "V_NON_NEGATIVE"} and len(again) == len(first) + 1


def test_a_workbook_missing_several_fields_keeps_every_finding_and_alert(tmp_path, catalog):
    """Two findings of one rule at one place (the agency code and the period both missing) are two
    findings and two alerts, not a duplicate key that would stop everyone's quarter."""
    import openpyxl

    from pipelines import steps as pipeline_steps
    from pipelines.warehouse import Warehouse

    raw = tmp_path / "raw"
    path = make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    book = openpyxl.load_workbook(path)
    info = book["Thông tin chung"]
    for row in info.iter_rows():
        for cell in row:
            if cell.value in ("Mã đơn vị", "Kỳ báo cáo"):
                cell.value = None  # the labels gone: both fields missing
    book.save(path)
    make_form(raw / "2024-Q1" / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", {"HSO.01": 10})
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        pipeline_steps.publish_dimensions(con, catalog)
        pipeline_steps.build_quarter(con, catalog, "2024-Q1", dt.datetime(2024, 4, 20, tzinfo=LOCAL_TZ), raw_dir=raw)
        missing = con.execute(
            "select value from fct_validation_finding where rule_id = 'WB_INFO_MISSING' order by value"
        ).fetchall()
        alerts = con.execute("select count(*) from fct_alert where rule_id = 'WB_INFO_MISSING'").fetchone()[0]
        failed = failing_blocking_checks(con, catalog)
    assert ("Kỳ báo cáo",) in missing and ("Mã đơn vị",) in missing
    assert alerts == len(missing) >= 2
    assert failed == []


@pytest.mark.slow  # a separate process: the full tier
def test_a_broken_model_file_is_a_message_not_a_defect(tmp_path):
    """Adding a table is an operator's job (docs/models.md): a mistake in its header ends the CLI with
    a message naming the file and line, exit code 2, as a bad catalog row does."""
    import subprocess
    import sys

    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns(".venv", ".dagster", "data", ".git", "__pycache__"))
    (repo / "sql" / "curated" / "fct_broken.sql").write_text("-- description: x\n-- partition: quarter\nselect 1 as a\n")
    (repo / "data" / "raw").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "run"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "CCHC_MAIL_ENABLED": "false"},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Tệp mô hình trong sql/ không hợp lệ" in result.stderr and "fct_broken.sql" in result.stderr
    assert "no '-- grain: ...' line" in result.stderr and "Traceback" not in result.stderr


def test_table_exists_answers_for_tables_and_views_and_leaves_a_transaction_usable(tmp_path):
    from pipelines.warehouse import table_exists

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t (x int)")
    con.execute("create view v as select * from t")
    con.execute('create table "odd ""name" (x int)')
    assert table_exists(con, "t") and table_exists(con, "v") and table_exists(con, 'odd "name')
    assert not table_exists(con, "missing") and not table_exists(con, 't" where false --')
    con.execute("begin transaction")
    con.execute("create table made_inside (x int)")
    assert table_exists(con, "made_inside") and not table_exists(con, "still_missing")
    con.execute("insert into t values (1)")  # the failed probe did not abort the transaction
    con.execute("rollback")
    assert not table_exists(con, "made_inside") and con.execute("select count(*) from t").fetchone() == (0,)
    con.execute(f"attach '{tmp_path / 'other.duckdb'}' as other")
    con.execute("create table other.main.only_there (x int)")
    assert not table_exists(con, "only_there")  # the current database's tables only
    con.execute("use other")
    assert table_exists(con, "only_there") and not table_exists(con, "t")
    con.close()
