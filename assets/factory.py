"""One factory turns the model files (sql/<layer>/<name>.sql, see pipelines/models.py) into Dagster assets.

Each model is an asset of the same name, with its description, its dependencies (the tables its
SQL reads), its columns where its files declare them (`declared_schemas`), its metadata on each
materialization (row count, a preview, and the columns where they are not the declared ones) and
its checks: the grain (the key is unique and not null), the references to dimensions and the
checks its header declares. Checks of severity `error` are blocking.

Assets are grouped by layer (the asset groups operators see), and built in two Dagster steps,
each a multi-asset that can be subset: `dimensions_models` (the catalog) and `quarter_models`
(a quarter's raw, staging, intermediate and curated models). At this size Dagster's per-step cost
(its events, and reading the latest materialization of every asset a step reads from outside
itself, for data versions) is larger than most models' work: a quarter in one step instead of
four (seventeen before that) saves 0.12-0.17 s of a re-run while operators still see every asset
and check (docs/performance.md). Inside a step the models are built in dependency order; a model
whose blocking check fails stops the models that depend on it (Dagster then fails the step, and
the later steps do not run). A function that builds several models (the raw tables, external
values) runs in the step of the earliest of them, once.

Dagster writes some 150 events a re-run (each model's output and materialization, each check's
output and evaluation, and the look-ups of what each materialization was computed from), 3-6 ms
each, in Python. So a step builds its models in a thread of its own, back to back, and hands
each over to the step's thread, which writes its events meanwhile: DuckDB's work and Dagster's
overlap on the machine's cores. The step's thread reads each model's metadata and runs its checks
on a connection of its own to the same database, where the model's rows are committed before it
is handed over: the builder, the step's longest path, does not wait for them. The blocking checks
of a model others of the step are built from run first, as the step's thread takes the model; the
builder goes on with the models not built from it and waits only before one that is, so such a
failure is known before a model built from it starts (and that model is not built). The raw
layer's models come first, in the step's own thread (reading the raw folder may fork a pool of
processes, which a process with a second thread must not do). The run's connection is the
builder's alone while it runs; a step that stops early (an error, Ctrl-C, a terminated run)
interrupts the builder's statements and waits for it before the connection can be closed.
"""

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Iterator
from dataclasses import replace
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


INTERRUPT_EVERY = 0.05  # seconds: how often a stopping step interrupts its builder's statements
QUARTER_STEP = "quarter"  # the step of every layer but the dimensions


def step_of(model: Model, models: dict[str, Model]) -> str:
    """The step a model is built in: "dimensions" or "quarter", by its layer, or by the layer of
    the earliest model sharing its function."""
    layer = model.layer
    if model.python is not None:
        layer = min((m.layer for m in models.values() if m.python == model.python), key=LAYERS.index)
    return "dimensions" if layer == "dimensions" else QUARTER_STEP


def steps(root: Path = SQL_DIR) -> dict[str, list[Model]]:
    """{step: its models in build order}."""
    models = all_models(root)
    out: dict[str, list[Model]] = {}
    for model in topological(models.values()):
        out.setdefault(step_of(model, models), []).append(model)
    return {step: out[step] for step in ("dimensions", QUARTER_STEP) if step in out}


def declared_schemas(models: list[Model]) -> dict[str, TableSchema | None]:
    """{model: its columns as its files declare them}, for `models` in dependency order: for a
    table the published model documents (sql/published/model.yaml), its columns with their types
    and meaning; else the `create table` of a Python model; else, for a SQL model, the columns of
    its select, as DuckDB binds it over empty tables of those columns (in memory, some 80 ms for
    the shipped models). None where they cannot be known before the table is built (a select that
    reads a table of unknown columns, or a Python model without `create table`).

    They are the assets' definition metadata (`dagster/column_schema`), which the Dagster UI shows
    as each asset's columns, with their meaning. A materialization carries the columns of the table
    it wrote only where they differ from these (`_metadata`): a column schema serialised into every
    materialization and read back for every data-version look-up cost some 0.15 s of a re-run at
    1,000 workbooks (docs/performance.md). tests/test_pipeline.py checks that they are the built
    tables' columns."""
    import duckdb

    from pipelines.model_docs import _ident, column_comment, load_model, objects
    from pipelines.models import _bind

    documented = {t["name"]: t for t in objects(load_model()) if t.get("kind", "table") == "table"}
    # the parameters a run binds, with the types it binds them with (a select's column types may follow them)
    params = {"partition_key": "2024-Q1", "year": 2024, "as_of": dt.datetime(2024, 4, 1, tzinfo=dt.UTC)}
    params |= {"every": True, "groups": ["x"]}

    def columns_of(con, model: Model) -> list[TableColumn] | None:
        """The model's declared columns, its empty table created in `con` for the models after it."""
        table = documented.get(model.name)
        if table is not None:
            columns = [TableColumn(c["name"], c["type"], description=column_comment(c)) for c in table["columns"]]
        elif model.ddl:
            con.execute(model.ddl)
            return [TableColumn(n, str(t)) for n, t, *_ in con.execute(f"select * from {_ident(model.name)} limit 0").description]
        elif model.python is None:
            # the cursor's description: the names and types, as DuckDB binds the select (no row is read)
            select = f"select * from ({model.body}\n) limit 0"
            columns = [TableColumn(n, str(t)) for n, t, *_ in con.execute(select, _bind(model.body, params)).description]
        else:
            return None
        con.execute(f"create table {_ident(model.name)} ({', '.join(f'{_ident(c.name)} {c.type}' for c in columns)})")
        return columns

    out: dict[str, TableSchema | None] = {}
    con = duckdb.connect()  # in memory: the declared tables, empty
    try:
        for model in models:
            try:
                columns = columns_of(con, model)
            except duckdb.Error:  # a type DuckDB does not know, a table of unknown columns read: as built
                columns = None
            out[model.name] = None if columns is None else TableSchema(columns=columns)
    finally:
        con.close()
    return out


def _spec(model: Model, schema: TableSchema | None = None) -> AssetSpec:
    metadata = {
        "model_file": str(model.path.relative_to(model.path.parents[2])),
        "grain": ", ".join(model.grain),
        "partitioned_by": model.partition,
    }
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    return AssetSpec(
        model.name,
        group_name=model.layer,
        description=model.description,
        deps=sorted(model.deps),
        kinds={"duckdb", "python" if model.python else "sql"},
        skippable=True,
        metadata=metadata,
    )


def _metadata(con, model: Model, rows: int, run: ModelRun, declared: TableSchema | None = None) -> dict:
    """Row count, a preview of the slice and, where they are not the `declared` ones (the asset's
    definition's: `declared_schemas`), the table's columns: one query, its cursor's description is
    the schema (the table's column names and types, as `describe` gives them)."""
    from pipelines.model_docs import normal_type

    where, params = slice_filter(model, run)
    cursor = con.execute(f'select * from "{model.name}" where {where} limit 10', params)
    first = cursor.fetchall()
    columns = [(name, str(type_)) for name, type_, *_ in cursor.description]
    metadata: dict = {"dagster/row_count": rows}
    if declared is None or [(c.name, normal_type(c.type)) for c in declared.columns] != [
        (name, normal_type(type_)) for name, type_ in columns
    ]:
        metadata["dagster/column_schema"] = TableSchema(columns=[TableColumn(name, type_) for name, type_ in columns])
    metadata["preview"] = markdown_table([name for name, _ in columns], first)
    return metadata


def _builds(
    todo: list[Model],
    run: ModelRun,
    checks: dict[str, tuple[set[str], set[str]]],
    results: dict,
    stopped: set[str],
    stop: threading.Event | None = None,
    verdicts: dict[str, threading.Event] | None = None,
) -> Iterator[tuple]:
    """Each model in turn built and the checks `checks` gives the builder run (`_checks_by_thread`):
    (model, rows written, check outcomes). A model whose blocking check fails stops the models that
    depend on it, which come as (model, the failed dependencies, None). `stop`: set, no further
    model is built.

    `verdicts` (the builder thread's way): those checks are the step thread's, run as it takes each
    model's item (`_events`), and the builder goes on meanwhile; it waits only before a model built
    from one of `verdicts`' models, until that model's event is set (its checks ran; a failure is in
    `stopped` by then). A model stopped here has its event set too (what depends on it stops)."""
    for model in todo:
        if stop is not None and stop.is_set():
            return
        for dep in sorted(model.deps & verdicts.keys()) if verdicts else ():
            while not verdicts[dep].wait(INTERRUPT_EVERY):
                if stop is not None and stop.is_set():
                    return
        if model.deps & stopped:
            stopped.add(model.name)
            if verdicts and model.name in verdicts:
                verdicts[model.name].set()
            yield model, sorted(model.deps & stopped), None
            continue
        model_run = run.for_slice(run.partition_key, model)
        rows = build(model, model_run, results)
        if verdicts is not None:
            yield model, rows, []
            continue
        outcomes = run_checks(model, model_run, checks[model.name][0])
        if any(not o.passed and o.severity == "error" for o in outcomes):
            stopped.add(model.name)
        yield model, rows, outcomes


def deferred_checks(todo: list[Model]) -> frozenset[tuple[str, str]]:
    """The checks (table, check) of these models, built in one step, that nothing in the step waits
    for: the warnings, and every check of a model none of the others is built from (its failure
    stops nothing in the step; later steps wait for its result, as they always did). The step's
    own thread runs them as it writes the model's events. The others, the blocking checks of a
    model others are built from, are run by the builder itself in the step's own thread (the raw
    layer), or by the step's thread first when it takes the model's item, the builder waiting for
    them before a model built from it (`_builds`' `verdicts`)."""
    built_from = {dep for model in todo for dep in model.deps}
    return frozenset(
        (model.name, name)
        for model in todo
        for name, severity, _ in check_specs(model)
        if severity != "error" or model.name not in built_from
    )


def _checks_by_thread(todo: list[Model], selected: set[tuple[str, str]]) -> dict[str, tuple[set[str], set[str]]]:
    """{model: (its selected checks that the models built from it wait for, the others: `deferred_checks`)}."""
    later = deferred_checks(todo)
    split: dict[str, tuple[set[str], set[str]]] = {model.name: (set(), set()) for model in todo}
    for table, name in selected:
        if table in split:
            split[table][1 if (table, name) in later else 0].add(name)
    return split


def _hand_over(builds: Iterator[tuple], built: queue.Queue) -> None:
    """In the builder thread: `_builds`' items into the queue; an error as (None, the error, None);
    None at the end."""
    try:
        for item in builds:
            built.put(item)
    except BaseException as exc:  # raised in the step (its traceback is the build's)
        built.put((None, exc, None))
    finally:
        built.put(None)


def _events(
    context: AssetExecutionContext,
    item: tuple,
    reader,
    run: ModelRun,
    checks: dict[str, tuple[set[str], set[str]]],
    verdicts: dict[str, threading.Event] | None = None,
    stopped: set[str] | None = None,
    declared: dict[str, TableSchema | None] | None = None,
) -> Iterator:
    """What the step yields for one of `_builds`' items (and the warning for a model not built).
    `reader`: the step thread's own connection, where the model's metadata is read (`_metadata`)
    and the checks `checks` gives this thread are run (`_checks_by_thread`). A model of `verdicts`
    has the builder's checks run here first, before anything else: a blocking failure goes into
    `stopped`, then its event is set, and the builder, which may be waiting to build a model from
    it, goes on."""
    model, rows, outcomes = item
    if outcomes is None:
        context.log.warning(f"{model.name}: not built, an upstream blocking check failed ({', '.join(rows)})")
        return
    model_run = replace(run.for_slice(run.partition_key, model), con=reader)
    verdict = verdicts.get(model.name) if verdicts else None
    if verdict is not None:
        try:
            first = run_checks(model, model_run, checks[model.name][0])
            if any(not o.passed and o.severity == "error" for o in first):
                stopped.add(model.name)
        except BaseException:
            stopped.add(model.name)
            raise
        finally:
            verdict.set()
        outcomes = outcomes + first
    metadata = _metadata(reader, model, rows, run, (declared or {}).get(model.name))
    names = checks[model.name][1]
    if names:
        outcomes = outcomes + run_checks(model, model_run, names)
    if verdict is not None or names:
        order = [name for name, _, _ in check_specs(model)]
        outcomes.sort(key=lambda outcome: order.index(outcome.name))
    # on the materialization only: as the result's metadata Dagster would copy it into the step's
    # output event too, serialising and storing it twice
    context.add_asset_metadata(metadata, asset_key=model.name)
    yield MaterializeResult(asset_key=model.name)
    for outcome in outcomes:
        check_metadata = {"count": outcome.count, "offending_rows": preview(outcome.rows, 50)}
        if outcome.workbooks is not None:
            check_metadata["workbooks"] = outcome.workbooks
        yield AssetCheckResult(
            asset_key=model.name,
            check_name=outcome.name,
            passed=outcome.passed,
            severity=SEVERITY[outcome.severity],
            metadata=check_metadata,
        )


def build_step(step: str, models: list[Model], declared: dict[str, TableSchema | None]):
    """The multi-asset that builds one step's models (`steps`); `declared`: their columns
    (`declared_schemas`)."""
    partitioned = step != "dimensions"
    names = {m.name for m in models}

    @multi_asset(
        name=f"{step}_models",
        specs=[_spec(m, declared[m.name]) for m in models],
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
        with warehouse.warehouse().connect() as con, contextlib.ExitStack() as held:
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
            todo = [model for model in models if model.name in selected]
            checks = _checks_by_thread(todo, selected_checks)
            results: dict = {}  # what a function building several models returned, by function
            stopped: set[str] = set()  # models whose blocking check failed, and what depends on them
            # the raw layer's models first, in this thread: reading the raw folder may fork a pool of
            # processes, which a process running a second thread (the builder's) must not do
            threaded = next((i for i, model in enumerate(todo) if model.layer != "raw"), len(todo))
            # the step thread's own connection to the database, where it reads each model's metadata
            # (its rows are committed before its item comes): 2 ms a model that the builder's thread,
            # the step's longest path, no longer spends; the same database and schema as the builder's
            reader = con.cursor()
            held.callback(reader.close)
            (database,) = con.execute("select current_database()").fetchone()
            reader.execute('use "' + database.replace('"', '""') + '"')
            # their events wait until the builder thread has started: written first, they held it
            # back by some 10 ms a model (40 ms of a re-run at 1,000 workbooks); the same events, in
            # the same order. What was built before a failure is still reported.
            raw_built: list[tuple] = []

            def raw_events() -> Iterator:
                for item in raw_built:
                    yield from _events(context, item, reader, run, checks, declared=declared)

            try:
                raw_built.extend(_builds(todo[:threaded], run, checks, results, stopped))
            except BaseException:
                yield from raw_events()
                raise
            if threaded == len(todo):
                yield from raw_events()
                return
            # the others in a thread of their own, back to back, while this one writes Dagster's
            # events of those already built; the connection is the builder's alone meanwhile
            built: queue.Queue = queue.Queue()
            stop = threading.Event()
            # the blocking checks of a model others are built from: run by this thread as it takes the
            # model's item, while the builder goes on with the models not built from it (9-43 ms a
            # check off the builder's path in a re-run at 1,000 workbooks; a first run's are larger)
            verdicts = {model.name: threading.Event() for model in todo[threaded:] if checks[model.name][0]}
            builder = threading.Thread(
                target=_hand_over,
                args=(_builds(todo[threaded:], run, checks, results, stopped, stop, verdicts), built),
                name=f"cchc-{step}-models",
                daemon=True,
            )
            builder.start()
            try:
                yield from raw_events()
                while (item := built.get()) is not None:
                    if isinstance(item[1], BaseException):
                        raise item[1]
                    yield from _events(context, item, reader, run, checks, verdicts, stopped, declared)
            finally:
                # the step stops early (a failure here, an interrupt): so do the builds, at their next
                # model or their running statement (a statement begun meanwhile is interrupted too)
                stop.set()
                while builder.is_alive():
                    con.interrupt()
                    builder.join(INTERRUPT_EVERY)

    _step.__doc__ = f"The {step} models, in dependency order: {', '.join(sorted(names))}."
    return _step


def model_assets(root: Path = SQL_DIR) -> list:
    """Every model's asset, in the multi-asset steps of `steps` (`root`: another sql/ folder, for tests)."""
    declared = declared_schemas(list(topological(all_models(root).values())))
    return [build_step(step, models, declared) for step, models in steps(root).items()]
