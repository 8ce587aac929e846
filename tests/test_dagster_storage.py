"""The shipped Dagster storage (pipelines/dagster_storage.py): Dagster's own SQLite files, written
in batches; what a run records reads back the same through Dagster's stock SQLite storage."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EventRecordsFilter,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
)
from dagster._check import CheckError
from dagster._utils.warnings import PreviewWarning

from pipelines import dagster_storage
from pipelines.dagster_storage import BatchedSqliteEventLogStorage, SqliteStorage
from tests.conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore:Use fetch_:UserWarning")


def _home(folder, storage_block: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + textwrap.dedent(storage_block), encoding="utf-8")
    return folder


def shipped(folder, base):
    return _home(
        folder,
        f"""
        storage:
          custom:
            module: pipelines.dagster_storage
            class: SqliteStorage
            config:
              base_dir: {base}
        """,
    )


def stock(folder, base):
    return _home(folder, f"storage:\n  sqlite:\n    base_dir: {base}\n")


@asset(check_specs=[AssetCheckSpec("positive", asset="figures"), AssetCheckSpec("small", asset="figures")])
def figures():
    return MaterializeResult(
        metadata={"rows": 3},
        check_results=[
            AssetCheckResult(check_name="positive", passed=True),
            AssetCheckResult(check_name="small", passed=False, metadata={"count": 2}),
        ],
    )


@asset(deps=[figures])
def summary():
    return MaterializeResult(metadata={"rows": 1})


DEFS = Definitions(assets=[figures, summary], jobs=[define_asset_job("both", selection=[figures, summary])])


def _records(instance, event_type):
    return instance.get_event_records(EventRecordsFilter(event_type=event_type), limit=1000)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One run of the job on the shipped storage: its folder, run id, event counts and the batches written."""
    tmp = tmp_path_factory.mktemp("storage")
    batches = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append([e.dagster_event.event_type for e in events])
        return original(self, events)

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
        patch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", spy)
        with DagsterInstance.from_config(str(shipped(tmp / "ours", tmp / "storage"))) as instance:
            batch_size = os.environ.get("DAGSTER_EVENT_BATCH_SIZE")
            storage_class = type(instance._event_storage)
            result = DEFS.resolve_job_def("both").execute_in_process(instance=instance)
            counts = {t: len(_records(instance, t)) for t in DagsterEventType}
    return {
        "tmp": tmp,
        "run_id": result.run_id,
        "success": result.success,
        "counts": counts,
        "batches": batches,
        "batch_size": batch_size,
        "storage_class": storage_class,
    }


def test_a_run_reads_back_the_same_through_dagsters_stock_storage(recorded):
    assert recorded["success"] and recorded["storage_class"] is BatchedSqliteEventLogStorage
    ours = recorded["counts"]
    with DagsterInstance.from_config(str(stock(recorded["tmp"] / "stock", recorded["tmp"] / "storage"))) as instance:
        run = instance.get_run_by_id(recorded["run_id"])
        assert run is not None and run.is_success
        assert {t: len(_records(instance, t)) for t in DagsterEventType} == ours
        assert ours[DagsterEventType.ASSET_MATERIALIZATION] == 2
        assert ours[DagsterEventType.ASSET_MATERIALIZATION_PLANNED] == 2
        assert ours[DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED] == 2
        assert instance.get_latest_materialization_event(AssetKey("summary")).asset_materialization.metadata["rows"].value == 1
        evaluations = {
            r.event_log_entry.dagster_event.event_specific_data.check_name: r.event_log_entry.dagster_event.event_specific_data.passed
            for r in _records(instance, DagsterEventType.ASSET_CHECK_EVALUATION)
        }
        assert evaluations == {"positive": True, "small": False}
        # every event of the run, in order, as the webserver's run page reads them
        types = [e.dagster_event.event_type for e in instance.all_logs(recorded["run_id"]) if e.is_dagster_event]
        assert types.count(DagsterEventType.STEP_SUCCESS) == 2 and types[-1] == DagsterEventType.RUN_SUCCESS


def test_the_planned_events_are_written_in_one_batch(recorded):
    assert recorded["batch_size"] == dagster_storage.BATCH_SIZE  # set by the storage when the environment had none
    planned = [b for b in recorded["batches"] if DagsterEventType.ASSET_MATERIALIZATION_PLANNED in b]
    assert len(planned) == 1 and len(planned[0]) == 4  # two assets, two checks


def test_a_failed_batch_leaves_nothing_behind(tmp_path):
    with DagsterInstance.from_config(str(shipped(tmp_path / "home", tmp_path / "storage"))) as instance:
        result = DEFS.resolve_job_def("both").execute_in_process(instance=instance)
        storage = instance._event_storage
        logs = instance.all_logs(result.run_id)
        before = len(logs)
        with pytest.raises(CheckError):  # the third "event" is not one: the first two must not stay
            storage.store_event_batch([logs[0], logs[1], "not an event"])
        assert len(instance.all_logs(result.run_id)) == before
        storage.store_event_batch([logs[0], logs[1]])  # and the storage still works afterwards
        assert len(instance.all_logs(result.run_id)) == before + 2


def test_engines_are_kept_for_the_latest_files_only(tmp_path, monkeypatch):
    monkeypatch.setattr(dagster_storage, "ENGINES_KEPT", 2)
    storage = SqliteStorage.from_local(str(tmp_path / "storage"))
    events = storage.event_log_storage
    for run in ("run-0", "run-1", "run-2"):
        with events.run_connection(run) as conn:
            conn.exec_driver_sql("select 1")
    assert list(events._engines) == ["run-1", "run-2"]  # the two most recent files
    with events.run_connection("run-1") as conn:  # used again: kept longest
        conn.exec_driver_sql("select 1")
    with events.index_connection() as conn:
        conn.exec_driver_sql("select 1")
    assert list(events._engines) == ["run-1", "index"]
    storage.dispose()
    assert events._engines == {}


def test_the_event_databases_sync_at_checkpoints_and_a_database_not_in_wal_mode_at_every_commit(tmp_path):
    import sqlite3

    storage = SqliteStorage.from_local(str(tmp_path / "storage"))
    events = storage.event_log_storage
    for connection in (events.run_connection("run-0"), events.index_connection()):
        with connection as conn:
            assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL (FULL is 2)
    storage.dispose()
    legacy = tmp_path / "legacy.db"  # a rollback-journal database: NORMAL could corrupt it on a power cut
    with contextlib.closing(sqlite3.connect(legacy)) as conn:
        conn.execute("pragma journal_mode=delete")
    with contextlib.closing(sqlite3.connect(legacy)) as conn:
        dagster_storage._sync_at_checkpoints(conn, None)
        assert conn.execute("pragma synchronous").fetchone() == (2,)


def _shape(path) -> tuple:
    """A SQLite file's schema, schema version and journal mode."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        return (
            sorted(conn.execute("select type, name, sql from sqlite_master").fetchall(), key=str),
            conn.execute("select version_num from alembic_version").fetchall(),
            conn.execute("pragma journal_mode").fetchone(),
        )


def test_a_new_runs_database_is_the_template_copy_and_equals_dagsters_own(tmp_path, monkeypatch):
    """Run databases after the first are copies of a template made by Dagster's own code; each is
    what Dagster's storage would have created, and events go into it as before."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    ours = BatchedSqliteEventLogStorage(str(tmp_path / "ours"))
    stock_storage = SqliteEventLogStorage(str(tmp_path / "stock"))
    with ours.run_connection("run-a") as conn, stock_storage.run_connection("run-a") as other:
        conn.exec_driver_sql("select 1")
        other.exec_driver_sql("select 1")
    templates = [p for p in os.listdir(tmp_path / "ours") if p.startswith(".run-template-")]
    assert len(templates) == 1 and not [p for p in os.listdir(tmp_path / "ours") if p.endswith(".tmp")]
    assert _shape(tmp_path / "ours" / "run-a.db") == _shape(tmp_path / "stock" / "run-a.db")
    assert _shape(tmp_path / "ours" / templates[0]) == _shape(tmp_path / "stock" / "run-a.db")
    for template in templates:  # deleted by hand while a run starts: the run's database is made Dagster's way
        os.unlink(tmp_path / "ours" / template)
    real_copy = shutil.copyfile

    def vanished(source, target):
        if os.path.exists(source):
            os.unlink(source)
        return real_copy(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(dagster_storage.shutil, "copyfile", vanished)
        assert ours._copy_template("run-c") is False
        assert not [p for p in os.listdir(tmp_path / "ours") if p.endswith(".tmp")]
    with ours.run_connection("run-c") as conn:
        conn.exec_driver_sql("select 1")
    assert _shape(tmp_path / "ours" / "run-c.db") == _shape(tmp_path / "stock" / "run-a.db")
    (tmp_path / "ours" / "run-b.db").write_bytes(b"")  # a database that exists is opened, not replaced
    assert ours._copy_template("run-b") is False and ours._copy_template("index") is False
    ours.dispose()
    stock_storage.dispose()


@pytest.mark.slow
def test_dagster_processes_load_the_shipped_dagster_yaml_from_anywhere(tmp_path):
    """`dagster dev`, the webserver and the daemon open the instance before loading any code, from
    their own folder and path: the storage named by the shipped dagster.yaml must import there
    (requirements.lock installs the project)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"DAGSTER_HOME": str(home)}
    script = "from dagster import DagsterInstance; print(type(DagsterInstance.get()._event_storage).__name__)"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "BatchedSqliteEventLogStorage"
    assert (tmp_path / ".dagster" / "storage" / "history" / "runs.db").exists()  # relative to where Dagster starts


@pytest.mark.slow
def test_processes_opening_a_new_storage_at_once_all_succeed_and_leave_it_whole(tmp_path):
    """Dagster's own SQLite storage lets processes that create it at the same moment stamp the
    schema version twice (one fails; the schedules database may be left with two versions, and
    then nobody can open it). The shipped storage creates it one process at a time."""
    import sqlite3

    code = (
        "import sys; from dagster import DagsterInstance; i = DagsterInstance.from_config(sys.argv[1]);"
        " i.get_runs(); i.all_instigator_state(); i.dispose()"
    )
    for attempt in range(3):  # before the fix, 9 of 36 processes (12 new homes x 3) failed
        home = shipped(tmp_path / f"home{attempt}", tmp_path / f"home{attempt}" / "storage")
        processes = [
            subprocess.Popen([sys.executable, "-c", code, str(home)], cwd=REPO, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=120)[1] for p in processes]
        assert [p.returncode for p in processes] == [0] * 4, errors
        for db in sorted((tmp_path / f"home{attempt}" / "storage").rglob("*.db")):
            with sqlite3.connect(db) as con:
                assert con.execute("select count(*) from alembic_version").fetchone()[0] == 1, db


def test_dagsters_migration_scripts_are_read_once_and_give_the_same_head(tmp_path, monkeypatch):
    """Opening an instance checks each database's schema version against the scripts' head: the
    scripts are read once per process (pipelines.dagster_storage.read_migrations_once), the head is
    the one alembic reads from them, and a database's own version is still read each time."""
    import importlib.resources

    from alembic.script import ScriptDirectory
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import get_alembic_config

    reads = []
    load = ScriptDirectory._load_revisions
    monkeypatch.setattr(ScriptDirectory, "_load_revisions", lambda self: reads.append(1) or load(self))
    home = _home(
        tmp_path / "home",
        "storage:\n  custom:\n    module: pipelines.dagster_storage\n    class: SqliteStorage\n"
        f"    config:\n      base_dir: {tmp_path / 'storage'}\n",
    )
    for _ in range(3):
        with DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs()
    assert len(reads) <= 1  # once in this process (0: an earlier test read them already)
    folder = importlib.resources.files("dagster") / "_core" / "storage" / "alembic"
    head = ScriptDirectory(str(folder)).get_current_head()  # alembic itself, nothing kept
    cached = ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__))
    assert cached.get_current_head() == head
    assert ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__)) is cached
    dagster_storage.read_migrations_once()  # again (the module imported anew): no second layer
    assert ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__)) is cached


def test_migration_facts_are_remembered_once_found_and_answered_as_dagster_answers_them(tmp_path, monkeypatch):
    """Tables, asset-key columns and completed data migrations: asked once, then remembered (they
    are only ever added); what is not there is asked every time, and every answer is Dagster's."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    asked = []
    for name in ("has_secondary_index", "_has_asset_key_col_on_connection"):
        original = getattr(SqlEventLogStorage, name)
        monkeypatch.setattr(SqlEventLogStorage, name, lambda self, *a, _o=original, _n=name: asked.append(_n) or _o(self, *a))
    questions = [
        ("has_secondary_index", ("asset_key_table",)),
        ("has_secondary_index", ("no such migration",)),
        ("has_asset_key_col", ("cached_status_data",)),
        ("has_asset_key_col", ("no_such_column",)),
        ("has_asset_key_index_cols", ()),
        ("can_read_asset_status_cache", ()),
    ]
    with DagsterInstance.from_config(str(stock(tmp_path / "stock", tmp_path / "stock_storage"))) as instance:
        assert DEFS.resolve_job_def("both").execute_in_process(instance=instance).success
        theirs = [getattr(instance._event_storage, name)(*args) for name, args in questions]
    with DagsterInstance.from_config(str(shipped(tmp_path / "ours", tmp_path / "storage"))) as instance:
        assert DEFS.resolve_job_def("both").execute_in_process(instance=instance).success
        storage = instance._event_storage
        first = [getattr(storage, name)(*args) for name, args in questions]
        asked.clear()
        second = [getattr(storage, name)(*args) for name, args in questions]
    assert first == second == theirs
    assert True in theirs and False in theirs  # both kinds of answer were put to the test
    # the second time only what was not found is asked again: the missing migration and column
    assert sorted(asked) == ["_has_asset_key_col_on_connection", "has_secondary_index"]


QUARTERS = StaticPartitionsDefinition(["2024-Q1", "2024-Q2", "2024-Q3"])


@asset(partitions_def=QUARTERS)
def quarterly():
    return MaterializeResult(metadata={"rows": 1})


with warnings.catch_warnings():  # a check with partitions is a preview in Dagster: its executions are stored by partition
    warnings.simplefilter("ignore", PreviewWarning)

    @asset(partitions_def=QUARTERS, check_specs=[AssetCheckSpec("filled", asset="quarterly_checked", partitions_def=QUARTERS)])
    def quarterly_checked():
        return MaterializeResult(metadata={"rows": 1}, check_results=[AssetCheckResult(check_name="filled", passed=True)])


def test_the_latest_tags_by_partition_are_dagsters_answer_in_the_storages_own_sql(tmp_path, monkeypatch):
    """`get_latest_tags_by_partition` (the data versions Dagster reads for each partitioned asset a
    step's models are built from) in SQL written once answers as Dagster's own query does: the
    latest materialization of each partition asked for, its data version; an asset that was wiped,
    or a call with cursors, is answered by Dagster's own code."""
    from dagster._core.definitions.data_version import DATA_VERSION_TAG
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    defs = Definitions(
        assets=[quarterly], jobs=[define_asset_job("quarterly_job", selection=[quarterly], partitions_def=QUARTERS)]
    )
    dagsters = SqliteEventLogStorage.get_latest_tags_by_partition
    asked_dagster = []
    monkeypatch.setattr(
        SqliteEventLogStorage, "get_latest_tags_by_partition", lambda *a, **k: asked_dagster.append(a[1:3]) or dagsters(*a, **k)
    )
    materialized = DagsterEventType.ASSET_MATERIALIZATION
    key = AssetKey("quarterly")
    with DagsterInstance.from_config(str(shipped(tmp_path / "home", tmp_path / "storage"))) as instance:
        storage = instance._event_storage
        job = defs.resolve_job_def("quarterly_job")
        for partition in ("2024-Q1", "2024-Q2", "2024-Q1"):  # Q1 twice: its latest is the second
            assert job.execute_in_process(instance=instance, partition_key=partition).success

        def both(*args, **kwargs):
            ours = storage.get_latest_tags_by_partition(*args, **kwargs)
            assert ours == dagsters(storage, *args, **kwargs)
            return ours

        everything = both(key, materialized, [DATA_VERSION_TAG])
        assert set(everything) == {"2024-Q1", "2024-Q2"} and all(DATA_VERSION_TAG in tags for tags in everything.values())
        latest_q1 = instance.get_latest_materialization_event(key)  # the last run was Q1's
        assert everything["2024-Q1"][DATA_VERSION_TAG] == latest_q1.tags[DATA_VERSION_TAG]
        assert set(both(key, materialized, [DATA_VERSION_TAG], ["2024-Q2", "2024-Q3"])) == {"2024-Q2"}
        assert both(key, materialized, [DATA_VERSION_TAG], []) == {}
        assert both(AssetKey("nothing"), materialized, [DATA_VERSION_TAG], ["2024-Q1"]) == {}
        assert both(key, DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG]) == {}
        assert asked_dagster == []  # only by the comparisons above, not by the storage itself
        with pytest.raises(CheckError):  # a tag Dagster does not index: refused, as Dagster refuses it
            storage.get_latest_tags_by_partition(key, materialized, ["not_indexed"])
        first_id = min(r.storage_id for r in _records(instance, materialized))
        storage.get_latest_tags_by_partition(key, materialized, [DATA_VERSION_TAG], after_cursor=first_id)
        assert len(asked_dagster) == 2
        # after a wipe, only later events count: Dagster's own filter by time answers
        instance.wipe_assets([key])
        assert job.execute_in_process(instance=instance, partition_key="2024-Q3").success
        assert set(both(key, materialized, [DATA_VERSION_TAG])) == {"2024-Q3"}
        assert len(asked_dagster) == 3


def _tables(folder) -> dict:
    """Every row of every table of each SQLite file under `folder` (the template aside), in rowid
    order; a column SQLite fills with the time of the insert (`default CURRENT_TIMESTAMP`) as None."""
    import sqlite3

    out = {}
    for path in sorted(p for p in folder.glob("*.db") if not p.name.startswith(".")):
        with contextlib.closing(sqlite3.connect(path)) as conn:
            names = [n for (n,) in conn.execute("select name from sqlite_master where type = 'table' order by name")]
            for name in names:
                columns = [
                    f'"{column}"' if "current_timestamp" not in str(default).lower() else "null"
                    for _, column, _, _, default, _ in conn.execute(f'pragma table_info("{name}")')
                ]
                out[(path.name, name)] = conn.execute(f'select {", ".join(columns)} from "{name}" order by rowid').fetchall()
    return out


def test_events_are_stored_as_dagsters_own_storage_stores_them(tmp_path, monkeypatch):
    """The storage inserts an event's rows with its own SQL: every table of the run's file and of the
    index (events, asset rows, tags, check executions) holds what Dagster's stock storage writes for
    the same events: a run with materializations and checks, one passing, one failing, and
    partitioned runs, whose events carry data versions. Also when the materialization record made
    from the event's text would not be Dagster's (another Dagster's format): Dagster's way then."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
    from dagster._core.instance.utils import RUNLESS_RUN_ID
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from pipelines import dagster_storage

    defs = Definitions(
        assets=[figures, summary, quarterly, quarterly_checked],
        jobs=[
            define_asset_job("both", selection=[figures, summary]),
            define_asset_job("quarterly_job", selection=[quarterly, quarterly_checked], partitions_def=QUARTERS),
        ],
    )
    logs = []
    with DagsterInstance.from_config(str(stock(tmp_path / "recorded", tmp_path / "recorded_storage"))) as instance:
        runs = [defs.resolve_job_def("both").execute_in_process(instance=instance)]
        for partition in ("2024-Q1", "2024-Q2", "2024-Q1"):
            runs.append(defs.resolve_job_def("quarterly_job").execute_in_process(instance=instance, partition_key=partition))
        # a check evaluated outside any run (reported by hand, or by a sensor)
        instance.report_runless_asset_event(AssetCheckEvaluation(asset_key=AssetKey("figures"), check_name="small", passed=True))
        for run_id in [result.run_id for result in runs] + [RUNLESS_RUN_ID]:
            logs.extend(instance.all_logs(run_id))
    assert sum(1 for e in logs if e.run_id == RUNLESS_RUN_ID) == 1
    kinds = {e.dagster_event_type for e in logs if e.is_dagster_event}
    assert {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
        DagsterEventType.RUN_SUCCESS,
        DagsterEventType.STEP_OUTPUT,
    } <= kinds
    # and the same events without the checks' planned events: each evaluation then inserts its row
    unplanned = [e for e in logs if e.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED]
    for name, events in (("all", logs), ("unplanned", unplanned), ("other_format", logs)):
        monkeypatch.setattr(dagster_storage, "_RECORD_TEXT_CHECKED", [])  # checked again in each "process"
        if name == "other_format":
            monkeypatch.setattr(dagster_storage, "_record_text", lambda storage_id, text: text.replace(": ", ":"))
        theirs = SqliteEventLogStorage(str(tmp_path / name / "theirs"))
        ours = BatchedSqliteEventLogStorage(str(tmp_path / name / "ours"))
        for storage in (theirs, ours):
            for event in events:
                storage.store_event(event)
            storage.dispose()
        written, expected = _tables(tmp_path / name / "ours"), _tables(tmp_path / name / "theirs")
        assert written.keys() == expected.keys()
        for table, rows in expected.items():
            if table[1] == "secondary_indexes":  # the data migrations each storage marked done at its creation: not when
                rows, written[table] = [r[:2] for r in rows], [r[:2] for r in written[table]]
            assert written[table] == rows, (name, table)
        assert [name != "other_format"] == dagster_storage._RECORD_TEXT_CHECKED
        # the data versions of the eight materializations; the checks' executions, partitioned or not
        assert len(written[("index.db", "asset_event_tags")]) == 8
        executions = written[("index.db", "asset_check_executions")]
        assert sorted((row[2], row[3], row[5]) for row in executions) == [
            ("filled", "2024-Q1", "SUCCEEDED"),
            ("filled", "2024-Q1", "SUCCEEDED"),
            ("filled", "2024-Q2", "SUCCEEDED"),
            ("positive", None, "SUCCEEDED"),
            ("small", None, "FAILED"),
            ("small", None, "SUCCEEDED"),
        ]


def test_materializations_and_asset_records_are_dagsters_answer_in_the_storages_own_sql(tmp_path, monkeypatch):
    """What a step reads back (the materialization each check result looked at, the asset records of
    the data versions) comes from the storage's own SQL and equals what Dagster's stock storage
    answers on the same files: partitions, limits, order, assets never materialized; a cursor, and an
    asset that was wiped, are answered by Dagster's own code."""
    from dagster._core.event_api import AssetRecordsFilter
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    defs = Definitions(
        assets=[figures, summary, quarterly],
        jobs=[
            define_asset_job("both", selection=[figures, summary]),
            define_asset_job("quarterly_job", selection=[quarterly], partitions_def=QUARTERS),
        ],
    )
    asked_dagster = []
    for name in ("fetch_materializations", "_fetch_asset_rows"):
        original = getattr(SqlEventLogStorage, name)
        monkeypatch.setattr(
            SqlEventLogStorage, name, lambda self, *a, _o=original, _n=name, **k: asked_dagster.append(_n) or _o(self, *a, **k)
        )
    key, keys = AssetKey("quarterly"), [AssetKey("quarterly"), AssetKey("figures"), AssetKey("summary"), AssetKey("nothing")]
    base = tmp_path / "storage"
    with DagsterInstance.from_config(str(shipped(tmp_path / "home", base))) as instance:
        assert defs.resolve_job_def("both").execute_in_process(instance=instance).success
        for partition in ("2024-Q1", "2024-Q2", "2024-Q1"):
            assert defs.resolve_job_def("quarterly_job").execute_in_process(instance=instance, partition_key=partition).success
        storage = instance._event_storage
        questions = [
            (AssetRecordsFilter(asset_key=key, asset_partitions=["2024-Q1"]), 1, False),
            (AssetRecordsFilter(asset_key=key, asset_partitions=["2024-Q1"]), 5, False),
            (AssetRecordsFilter(asset_key=key, asset_partitions=["2024-Q1", "2024-Q2", "2024-Q3"]), 5, True),
            (AssetRecordsFilter(asset_key=key, asset_partitions=["2024-Q3"]), 1, False),
            (AssetRecordsFilter(asset_key=AssetKey("nothing"), asset_partitions=["2024-Q1"]), 1, False),
        ]
        asked_dagster.clear()
        ours = [storage.fetch_materializations(f, n, ascending=a) for f, n, a in questions]
        records = [storage.get_asset_records(k) for k in (keys, keys[:1], keys[1:3], [])]
        assert asked_dagster == []
        assert [len(r.records) for r in ours] == [1, 2, 3, 0, 0]
        assert [r.asset_entry.asset_key for r in records[0]] == sorted(keys[:3], key=lambda k: k.to_string())
    with DagsterInstance.from_config(str(stock(tmp_path / "stock", base))) as instance:
        stock_storage = instance._event_storage
        assert type(stock_storage) is not BatchedSqliteEventLogStorage
        assert [stock_storage.fetch_materializations(f, n, ascending=a) for f, n, a in questions] == ours
        assert [stock_storage.get_asset_records(k) for k in (keys, keys[:1], keys[1:3], [])] == records
    with DagsterInstance.from_config(str(shipped(tmp_path / "home", base))) as instance:
        storage = instance._event_storage
        first = storage.fetch_materializations(questions[1][0], 1)
        asked_dagster.clear()
        storage.fetch_materializations(questions[1][0], 1, cursor=first.cursor)  # a cursor: Dagster's way
        assert asked_dagster == ["fetch_materializations"]
        instance.wipe_assets([key])  # wiped: Dagster's own filter by time answers
        assert defs.resolve_job_def("quarterly_job").execute_in_process(instance=instance, partition_key="2024-Q3").success
        asked_dagster.clear()
        after_wipe = [storage.fetch_materializations(f, n, ascending=a) for f, n, a in questions]
        assert "fetch_materializations" in asked_dagster
        wiped_records = storage.get_asset_records(keys)
    assert [len(r.records) for r in after_wipe] == [0, 0, 1, 1, 0]
    with DagsterInstance.from_config(str(stock(tmp_path / "stock", base))) as instance:
        assert [instance._event_storage.fetch_materializations(f, n, ascending=a) for f, n, a in questions] == after_wipe
        assert instance._event_storage.get_asset_records(keys) == wiped_records


def test_the_runs_database_is_opened_once_per_storage_and_reads_back_through_dagsters_own(tmp_path):
    """The run storage keeps its engine and an idle connection (Dagster's opens the file anew at
    every call), synced at checkpoints; the runs it records read back the same through Dagster's
    stock storage."""
    import sqlalchemy

    from pipelines.dagster_storage import KeptSqliteRunStorage

    base = tmp_path / "storage"
    with DagsterInstance.from_config(str(shipped(tmp_path / "home", base))) as instance:
        runs = instance._run_storage
        assert isinstance(runs, KeptSqliteRunStorage)
        assert DEFS.resolve_job_def("both").execute_in_process(instance=instance).success
        opened = []
        sqlalchemy.event.listen(runs._engine(), "connect", lambda *_: opened.append(1))
        results = [DEFS.resolve_job_def("both").execute_in_process(instance=instance) for _ in range(2)]
        assert opened == []  # two more runs on the connection already open
        with runs.connect() as conn:
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL, in WAL mode
        ours = [(r.run_id, r.status, r.tags) for r in instance.get_runs()]
        plans = {r.execution_plan_snapshot_id for r in instance.get_runs()} | {"no-such-snapshot"}
        present = {plan: runs.has_execution_plan_snapshot(plan) for plan in plans}  # by its row, not read back whole
    assert runs._kept is None  # disposed with the instance
    with DagsterInstance.from_config(str(stock(tmp_path / "stock", base))) as instance:
        assert type(instance._run_storage) is not KeptSqliteRunStorage
        assert [(r.run_id, r.status, r.tags) for r in instance.get_runs()] == ours
        assert {plan: instance._run_storage.has_execution_plan_snapshot(plan) for plan in plans} == present
        assert sorted(present.values()) == [False, True]
        assert {result.run_id for result in results} <= {run_id for run_id, _, _ in ours} and len(ours) == 3
