"""The one place that assembles the Dagster project (`dagster dev -m pipelines.definitions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import AssetKey, DagsterInstance, Definitions, JobDefinition

from assets.delivery import notification_log
from assets.factory import model_assets
from assets.publish import published_database
from pipelines.console import console_logger
from pipelines.jobs import catalog_job, publish_job, quarter_and_publish_job, quarterly_job
from pipelines.resources import build_resources
from pipelines.schedules import build_quarterly_schedule
from pipelines.sensors import catalog_sensor, publish_after_success, raw_folder_sensor, reap_dead_runs_sensor

ALL_ASSETS = [*model_assets(), notification_log, published_database]


def build_definitions(env=None) -> Definitions:
    resources = build_resources(env)
    catalog = resources["catalog"].load()
    return Definitions(
        assets=ALL_ASSETS,
        jobs=[quarterly_job, catalog_job, publish_job, quarter_and_publish_job],
        schedules=[build_quarterly_schedule(catalog)],
        sensors=[raw_folder_sensor, catalog_sensor, publish_after_success, reap_dead_runs_sensor],
        resources=resources,
        loggers={"console": console_logger},
    )


defs = build_definitions()


# --------------------------------------------------------------------- running a job in this process
# `JobDefinition.execute_in_process` builds, for every run, a new job for the in-process executor
# and the asset selection, and Dagster then computes that job's snapshot and its parent's (their
# serialised forms and hashes) to create the run: 0.06-0.08 s of a re-run, the same each time.
# `execute_in_process` below does what Dagster's does (pinned version, pyproject.toml) with that job
# built once per process and selection; the warm worker builds the jobs a command runs before it
# forks commands (`warm_jobs`). This module is reloaded whenever the settings it was built under
# change (pipelines.worker, PROJECT_WARM), and the jobs with it.
_IN_PROCESS: dict[tuple[int, str, frozenset[AssetKey] | None], tuple[Definitions, JobDefinition]] = {}


def in_process_job(
    job_name: str, asset_selection: Sequence[AssetKey] | None = None, definitions: Definitions | None = None
) -> JobDefinition:
    """The job `execute_in_process` runs for this job (of `definitions`, default: `defs`) and
    selection, its snapshots computed; one per process, definitions and selection."""
    definitions = definitions if definitions is not None else defs
    key = (id(definitions), job_name, frozenset(asset_selection) if asset_selection else None)
    if key not in _IN_PROCESS:
        job = definitions.resolve_job_def(job_name).as_ephemeral_job(
            resource_defs={}, input_values={}, asset_selection=list(asset_selection or [])
        )
        job.get_job_index()  # the job's snapshot and its parent's, kept with the job
        _keep_subsets(job)
        if asset_selection:  # the subset the run is created from (Dagster's create_run_for_job asks for it)
            job.get_subset(asset_selection=frozenset(asset_selection))
        _IN_PROCESS[key] = (definitions, job)  # the definitions held: their id stays theirs
    return _IN_PROCESS[key][1]


def _keep_subsets(job: JobDefinition) -> None:
    """`job.get_subset` building each subset once, with its snapshots: Dagster's `create_run_for_job`
    subsets the job it is given by the run's asset selection again for every run, and computes the
    new job's snapshot and its hash (25-35 ms of a re-run). A subset is a function of the job and
    the selection, as the job is of its definitions and selection."""
    build = job.get_subset
    kept: dict = {}

    def get_subset(*, op_selection=None, asset_selection=None, asset_check_selection=None) -> JobDefinition:
        key = (
            tuple(op_selection) if op_selection else None,
            frozenset(asset_selection) if asset_selection else None,
            None if asset_check_selection is None else frozenset(asset_check_selection),  # None: the default checks
        )
        if key not in kept:
            subset = build(
                op_selection=op_selection, asset_selection=asset_selection, asset_check_selection=asset_check_selection
            )
            subset.get_job_index()
            kept[key] = subset
        return kept[key]

    job.get_subset = get_subset


def execute_in_process(
    job_name: str,
    *,
    instance: DagsterInstance,
    run_config: Mapping[str, object] | None = None,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = True,
    asset_selection: Sequence[AssetKey] | None = None,
    definitions: Definitions | None = None,
):
    """`definitions.resolve_job_def(job_name).execute_in_process(...)` (default: `defs`) with these
    arguments, the same run (tests/test_definitions.py compares them), with the job it runs kept
    (`in_process_job`)."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags, type_check_and_normalize_args

    run_config, _, selection, _, partition_key, _ = type_check_and_normalize_args(
        run_config=run_config, partition_key=partition_key, asset_selection=asset_selection
    )
    definitions = definitions if definitions is not None else defs
    job = in_process_job(job_name, selection, definitions)
    if partition_key and job.partitions_def:
        with partition_loading_context(dynamic_partitions_store=instance) as ctx:
            job.validate_partition_key(partition_key=partition_key, selected_asset_keys=set(selection), context=ctx)
    if not run_config and job.partitioned_config and partition_key:
        run_config = job.partitioned_config.get_run_config_for_partition_key(partition_key)
    return core_execute_in_process(
        job=InMemoryJob(job_def=job),
        run_config=run_config,
        instance=instance,
        output_capturing_enabled=True,
        raise_on_error=raise_on_error,
        run_tags=merge_run_tags(
            job_def=definitions.resolve_job_def(job_name),
            partition_key=partition_key,
            tags=tags,
            asset_selection=selection,
            instance=instance,
            run_config=run_config,
        ),
        run_id=None,
        asset_selection=frozenset(selection),
    )


def command_selection(job_name: str, without: set[str] | frozenset[str] = frozenset()) -> list[AssetKey] | None:
    """The assets of a job a command runs, except those named (None: all of them)."""
    if not without:
        return None
    job = defs.resolve_job_def(job_name)
    return [key for key in job.asset_layer.executable_asset_keys if key.path[-1] not in without]


def warm_jobs() -> None:
    """Build the jobs a command runs most (`python -m pipelines run` on one quarter, the catalog
    unchanged, with and without the external-values tables) in this process: the warm worker does
    it once for every command it forks."""
    from pipelines.models import command_groups

    dimensions, external = command_groups()
    for without in (dimensions, dimensions | external):
        in_process_job(quarter_and_publish_job.name, command_selection(quarter_and_publish_job.name, without))
