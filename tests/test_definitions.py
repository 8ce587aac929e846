import datetime as dt

import pytest
from dagster import RunRequest, SkipReason, build_schedule_context

from pipelines.catalog import Catalog
from pipelines.definitions import ALL_ASSETS, build_definitions, defs
from pipelines.periods import LOCAL_TZ
from pipelines.schedules import build_quarterly_schedule, next_ticks, run_request_for, schedule_cron
from tests.conftest import REPO


def test_definitions_load():
    repo = defs.get_repository_def()
    assert {"cchc_quarterly", "cchc_catalog"} <= {job.name for job in repo.get_all_jobs()}
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {
        "raw_submission",
        "stg_value",
        "int_finding",
        "fct_indicator_value",
        "fct_target_scorecard",
        "fct_alert",
        "dim_agency",
        "notification_log",
    } <= keys
    # the dimensions (catalog job) in one step, a quarter's layers in another, then delivery and publish
    assert len(ALL_ASSETS) == 4
    quarterly = defs.resolve_job_def("cchc_quarterly")
    assert sorted(node.name for node in quarterly.graph.nodes) == ["notification_log", "quarter_models"]
    # operators still see each model as an asset, in its layer's group
    graph = quarterly.asset_layer.asset_graph
    group = {key.path[-1]: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert group["raw_value"] == "raw" and group["int_finding"] == "intermediate" and group["fct_alert"] == "curated"
    assert {s.name for s in repo.schedule_defs} == {"cchc_after_due_day"}
    assert {s.name for s in repo.sensor_defs} == {
        "raw_folder_sensor",
        "catalog_sensor",
        "publish_after_success",
        "reap_dead_runs_sensor",
    }
    assert "cchc_publish" in {job.name for job in repo.get_all_jobs()}


def test_partitions_are_quarters_people_can_read():
    from pipelines.partitions import quarterly_partitions

    keys = quarterly_partitions.get_partition_keys()
    assert keys[:5] == ["2021-Q1", "2021-Q2", "2021-Q3", "2021-Q4", "2022-Q1"]
    today = dt.date.today()
    assert f"{today.year}-Q{(today.month - 1) // 3 + 1}" in keys and keys[-1] == f"{today.year + 1}-Q4"


def test_the_smtp_password_is_read_through_envvar(monkeypatch):
    from dagster import EnvVar

    monkeypatch.setenv("CCHC_SMTP_PASSWORD", "s3cret")
    built = build_definitions({"CCHC_SMTP_PASSWORD": "s3cret", "CCHC_SMTP_HOST": "smtp.example.test"})
    mailer = built.resources["mailer"]
    assert isinstance(mailer.smtp_password, EnvVar) and "s3cret" not in repr(mailer)


def test_groups_follow_layers():
    graph = defs.get_repository_def().asset_graph
    for key in graph.get_all_asset_keys():
        name = key.to_user_string()
        group = graph.get(key).group_name
        prefix = name.split("_")[0]
        expected = {
            "raw": "raw",
            "stg": "staging",
            "int": "intermediate",
            "fct": "curated",
            "dim": "dimensions",
            "notification": "delivery",
            "published": "publish",
        }[prefix]
        assert group == expected, name


def test_resources_come_from_the_environment(tmp_path):
    built = build_definitions({"CCHC_DATABASE": str(tmp_path / "x.duckdb"), "CCHC_RAW_DIR": str(tmp_path / "raw")})
    assert built.resources["warehouse"].database_path == str(tmp_path / "x.duckdb")
    assert built.resources["raw"].raw_dir == str(tmp_path / "raw")
    assert defs.resources["warehouse"].database_path == "data/curated/cchc.duckdb"


def test_schedule_cron_comes_from_the_calendars():
    catalog = Catalog.load(REPO / "catalog")
    # Cần Thơ due day 10 -> runs on the 11th; Trần Đề and Ngã Năm due day 11 -> the 12th; Tây Hòa and the
    # 2025 provinces (assumed national rule) due day 15 -> the 16th
    days = sorted({min(int(d) + 1, 28) for d in catalog.calendars["due_day"]})
    assert days == [11, 12, 16]
    assert schedule_cron(catalog) == "0 7 11,12,16 3,6,9,12 *"


def test_next_tick_is_the_day_after_the_due_day():
    catalog = Catalog.load(REPO / "catalog")
    schedule = build_quarterly_schedule(catalog)
    after = dt.datetime(2024, 1, 15, 9, 0, tzinfo=LOCAL_TZ)
    ticks = next_ticks(schedule, after, 3)
    assert [t.astimezone(LOCAL_TZ).replace(tzinfo=None) for t in ticks] == [
        dt.datetime(2024, 3, 11, 7, 0),
        dt.datetime(2024, 3, 12, 7, 0),
        dt.datetime(2024, 3, 16, 7, 0),
    ]
    # across a year end
    ticks = next_ticks(schedule, dt.datetime(2024, 12, 20, 9, 0, tzinfo=LOCAL_TZ), 2)
    assert [t.astimezone(LOCAL_TZ).replace(tzinfo=None) for t in ticks] == [
        dt.datetime(2025, 3, 11, 7),
        dt.datetime(2025, 3, 12, 7),
    ]


def test_schedule_requests_the_quarter_whose_report_fell_due():
    catalog = Catalog.load(REPO / "catalog")
    request = run_request_for(catalog, dt.datetime(2024, 3, 12, 7, 0, tzinfo=LOCAL_TZ))
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2024-Q1" and request.tags["cchc/authorities"] == "NN,TD"
    request = run_request_for(catalog, dt.datetime(2024, 12, 11, 7, 0, tzinfo=LOCAL_TZ))
    assert request.partition_key == "2024-Q4" and request.tags["cchc/authorities"] == "CT"
    assert isinstance(run_request_for(catalog, dt.datetime(2024, 3, 13, 7, 0, tzinfo=LOCAL_TZ)), SkipReason)
    schedule = defs.get_repository_def().get_schedule_def("cchc_after_due_day")
    context = build_schedule_context(
        scheduled_execution_time=dt.datetime(2024, 9, 12, 7, 0, tzinfo=LOCAL_TZ), repository_def=defs.get_repository_def()
    )
    result = schedule.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests] == ["2024-Q3"]


@pytest.mark.slow  # end to end (a Dagster job, a subprocess or every set): the full tier
def test_a_successful_quarterly_run_requests_the_publish_of_its_quarter(tmp_path):
    """The daemon's chain: raw_folder_sensor or the schedule -> cchc_quarterly -> publish_after_success -> cchc_publish."""
    from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context

    from pipelines.sensors import publish_after_success

    built = build_definitions({"CCHC_RAW_DIR": str(tmp_path / "raw"), "CCHC_DATABASE": str(tmp_path / "x.duckdb")})
    (tmp_path / "raw").mkdir()
    instance = DagsterInstance.ephemeral()
    result = built.resolve_job_def("cchc_quarterly").execute_in_process(
        instance=instance,
        partition_key="2024-Q1",
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    assert result.success
    event = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_SUCCESS)
    context = build_run_status_sensor_context(
        sensor_name="publish_after_success", dagster_event=event, dagster_instance=instance, dagster_run=result.dagster_run
    )
    request = publish_after_success(context)
    assert request.tags["cchc/partitions"] == "2024-Q1" and request.run_key == f"publish-after:{result.run_id}"
    assert publish_after_success.job_name == "cchc_publish"


def test_duckdb_memory_comes_from_the_environment_and_a_bad_value_is_refused(tmp_path):
    from pipelines.errors import ConfigError

    built = build_definitions({"CCHC_DATABASE": str(tmp_path / "x.duckdb"), "CCHC_DUCKDB_MEMORY": "2GB"})
    assert built.resources["warehouse"].memory_limit == "2GB"
    assert build_definitions({"CCHC_DATABASE": str(tmp_path / "x.duckdb")}).resources["warehouse"].memory_limit == "512MB"
    with pytest.raises(ConfigError, match="CCHC_DUCKDB_MEMORY"):
        build_definitions({"CCHC_DUCKDB_MEMORY": "lots; drop table x"})


def _tiny_definitions():
    """A partitioned multi-asset (a -> b -> c, a check on c) that can be subset, as the model steps are."""
    from dagster import (
        AssetCheckResult,
        AssetCheckSpec,
        AssetSpec,
        Definitions,
        MaterializeResult,
        StaticPartitionsDefinition,
        define_asset_job,
        multi_asset,
    )

    @multi_asset(
        specs=[
            AssetSpec("a", skippable=True),
            AssetSpec("b", deps=["a"], skippable=True),
            AssetSpec("c", deps=["b"], skippable=True),
        ],
        check_specs=[AssetCheckSpec("positive", asset="c")],
        partitions_def=StaticPartitionsDefinition(["p1", "p2"]),
        can_subset=True,
    )
    def step(context):
        for key in sorted(context.selected_asset_keys, key=lambda k: k.path[-1]):
            yield MaterializeResult(asset_key=key, metadata={"partition": context.partition_key})
            if key.path[-1] == "c":
                yield AssetCheckResult(asset_key="c", check_name="positive", passed=True)

    return Definitions(assets=[step], jobs=[define_asset_job("tiny", partitions_def=step.partitions_def)])


def test_execute_in_process_is_dagsters_run_with_the_job_kept():
    """pipelines.definitions.execute_in_process (what the CLI runs jobs with) gives the run Dagster's
    own JobDefinition.execute_in_process gives: the same assets, checks, tags and job snapshot;
    and builds the job it runs once per selection."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance

    from pipelines.definitions import execute_in_process, in_process_job

    tiny = _tiny_definitions()
    selection = [AssetKey("b"), AssetKey("c")]
    arguments = {"partition_key": "p2", "tags": {"cchc/trigger": "cli"}, "raise_on_error": False, "run_config": {}}
    with DagsterInstance.ephemeral() as instance:
        theirs = tiny.resolve_job_def("tiny").execute_in_process(instance=instance, asset_selection=selection, **arguments)
        ours = execute_in_process("tiny", instance=instance, asset_selection=selection, definitions=tiny, **arguments)
        again = execute_in_process("tiny", instance=instance, asset_selection=selection, definitions=tiny, **arguments)
        runs = [instance.get_run_by_id(result.run_id) for result in (theirs, ours, again)]

        def outcome(result):
            events = result.all_events
            return (
                result.success,
                sorted(e.asset_key.path[-1] for e in events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION),
                sorted(
                    e.event_specific_data.check_name for e in events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
                ),
            )

        assert outcome(theirs) == outcome(ours) == outcome(again) == (True, ["b", "c"], ["positive"])
        assert runs[0].tags == runs[1].tags == runs[2].tags
        assert runs[0].tags["dagster/partition"] == "p2" and runs[0].tags["cchc/trigger"] == "cli"
        assert runs[0].job_snapshot_id == runs[1].job_snapshot_id == runs[2].job_snapshot_id
        assert runs[0].asset_selection == runs[1].asset_selection == frozenset(selection)
        assert in_process_job("tiny", selection, tiny) is in_process_job("tiny", list(reversed(selection)), tiny)
        assert in_process_job("tiny", None, tiny) is not in_process_job("tiny", selection, tiny)
        kept = in_process_job("tiny", selection, tiny)  # the run's subset built once, with its snapshot
        assert kept.get_subset(asset_selection=set(selection)) is kept.get_subset(asset_selection=frozenset(reversed(selection)))
        assert kept.get_subset(asset_selection={AssetKey("b")}).get_job_snapshot_id() != runs[0].job_snapshot_id
        assert kept.get_subset(asset_selection=set(selection)).get_job_snapshot_id() == runs[0].job_snapshot_id
        # a partition the job does not have: refused as Dagster refuses it
        with pytest.raises(Exception) as dagsters:
            tiny.resolve_job_def("tiny").execute_in_process(instance=instance, partition_key="p9", asset_selection=selection)
        with pytest.raises(type(dagsters.value)):
            execute_in_process("tiny", instance=instance, partition_key="p9", asset_selection=selection, definitions=tiny)
