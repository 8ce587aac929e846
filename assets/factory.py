"""One factory turns the model files (sql/<layer>/<name>.sql, see pipelines/models.py) into Dagster assets.

Each model is an asset of the same name, with its description, its dependencies (the tables its
SQL reads), its metadata (row count, column schema, a preview) and its checks: the grain (the key
is unique and not null), the references to dimensions and the checks its header declares. Checks
of severity `error` are blocking.

Assets are grouped by layer, and each layer is one Dagster step (a multi-asset that can be
subset): at this size Dagster's per-step cost (events, storage) is larger than most models'
work, so a quarter runs in four steps instead of seventeen while operators still see every
asset and check. Inside a step the models are built in dependency order; a model whose blocking
check fails stops the models of the step that depend on it (and Dagster the later steps).
A function that builds several models (the raw tables, external values) runs in the step of the
earliest of them, once.
"""

from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    TableColumn,
    TableSchema,
    multi_asset,
)

from assets.common import markdown_table, preview
from pipelines.models import LAYERS, Model, ModelRun, all_models, build, check_specs, run_checks, slice_filter, topological
from pipelines.partitions import quarterly_partitions
from pipelines.resources import CatalogResource, ClockResource, RawFolderResource, WarehouseResource
from pipelines.warehouse import SQL_DIR

SEVERITY = {"error": AssetCheckSeverity.ERROR, "warn": AssetCheckSeverity.WARN}


def step_of(model: Model, models: dict[str, Model]) -> str:
    """The step (layer) a model is built in: its own, or that of the earliest model sharing its function."""
    if model.python is None:
        return model.layer
    sharing = [m.layer for m in models.values() if m.python == model.python]
    return min(sharing, key=LAYERS.index)


def steps(root: Path = SQL_DIR) -> dict[str, list[Model]]:
    """{step: its models in build order}."""
    models = all_models(root)
    out: dict[str, list[Model]] = {}
    for model in topological(models.values()):
        out.setdefault(step_of(model, models), []).append(model)
    return {layer: out[layer] for layer in LAYERS if layer in out}


def _spec(model: Model) -> AssetSpec:
    return AssetSpec(
        model.name,
        group_name=model.layer,
        description=model.description,
        deps=sorted(model.deps),
        kinds={"duckdb", "python" if model.python else "sql"},
        skippable=True,
        metadata={
            "model_file": str(model.path.relative_to(model.path.parents[2])),
            "grain": ", ".join(model.grain),
            "partitioned_by": model.partition,
        },
    )


def _metadata(con, model: Model, rows: int, run: ModelRun) -> dict:
    """Row count, column schema and a preview of the slice: one query, its cursor's description is
    the schema (the table's column names and types, as `describe` gives them)."""
    where, params = slice_filter(model, run)
    cursor = con.execute(f'select * from "{model.name}" where {where} limit 10', params)
    first = cursor.fetchall()
    columns = [(name, str(type_)) for name, type_, *_ in cursor.description]
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": TableSchema(columns=[TableColumn(name, type_) for name, type_ in columns]),
        "preview": markdown_table([name for name, _ in columns], first),
    }


def build_step(layer: str, models: list[Model]):
    """The multi-asset that builds one layer's models."""
    partitioned = layer != "dimensions"
    names = {m.name for m in models}

    @multi_asset(
        name=f"{layer}_models",
        specs=[_spec(m) for m in models],
        check_specs=[
            AssetCheckSpec(name, asset=m.name, description=text, blocking=severity == "error")
            for m in models
            for name, severity, text in check_specs(m)
        ],
        partitions_def=quarterly_partitions if partitioned else None,
        can_subset=True,
    )
    def _step(
        context: AssetExecutionContext,
        catalog: CatalogResource,
        warehouse: WarehouseResource,
        raw: RawFolderResource,
        clock: ClockResource,
    ) -> Iterator:
        selected = {key.path[-1] for key in context.selected_asset_keys}
        selected_checks = {(key.asset_key.path[-1], key.name) for key in context.selected_asset_check_keys}
        with warehouse.warehouse().connect() as con:
            run = ModelRun(
                con,
                partition_key=context.partition_key if partitioned else None,
                now=clock.now(),
                catalog_loader=catalog.load,
                raw_dir=raw.path,
                register_path=raw.register_path,
                cache_dir=warehouse.parse_cache_dir,
                limits=raw.limits(),
            )
            results: dict = {}
            stopped: set[str] = set()  # models whose blocking check failed, and what depends on them
            for model in models:
                if model.name not in selected:
                    continue
                if model.deps & stopped:
                    stopped.add(model.name)
                    context.log.warning(
                        f"{model.name}: not built, an upstream blocking check failed ({', '.join(model.deps & stopped)})"
                    )
                    continue
                rows = build(model, run.for_slice(run.partition_key, model), results)
                yield MaterializeResult(asset_key=model.name, metadata=_metadata(con, model, rows, run))
                wanted = {name for table, name in selected_checks if table == model.name}
                for outcome in run_checks(model, run.for_slice(run.partition_key, model), wanted):
                    if not outcome.passed and outcome.severity == "error":
                        stopped.add(model.name)
                    metadata = {"count": outcome.count, "offending_rows": preview(outcome.rows, 50)}
                    if outcome.workbooks is not None:
                        metadata["workbooks"] = outcome.workbooks
                    yield AssetCheckResult(
                        asset_key=model.name,
                        check_name=outcome.name,
                        passed=outcome.passed,
                        severity=SEVERITY[outcome.severity],
                        metadata=metadata,
                    )

    _step.__doc__ = f"The {layer} models, in dependency order: {', '.join(sorted(names))}."
    return _step


def model_assets(root: Path = SQL_DIR) -> list:
    """Every model's asset, one multi-asset step per layer (`root`: another sql/ folder, for tests)."""
    return [build_step(layer, models) for layer, models in steps(root).items()]
