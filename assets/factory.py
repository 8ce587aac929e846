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
each, in Python. So a step's models are built by builder threads of their own (`_Builders`: two,
each on its own connection to the database, a model as soon as those it is built from are built),
which hand each model over to the step's thread, which writes its events meanwhile: DuckDB's work
and Dagster's overlap on the machine's cores, and so do models that do not depend on each other
(the validation and the staged values; the data-element values and the indicators). The step's
thread reads each model's metadata and runs its checks on a connection of its own to the same
database, where the model's rows are committed before it is handed over: the builders, on the
step's longest path, do not wait for them. The blocking checks of a model others of the step are
built from are run by its builder right after the build, while the other builder goes on with the
models not built from it: such a failure is known before a model built from it starts (and that
model is not built). The raw layer's models come first, in the step's own
thread (reading the raw folder may fork a pool of processes, which a process with a second thread
must not do). The run's connection is the first builder's alone while it runs; a step that stops
early (an error, Ctrl-C, a terminated run) interrupts the builders' statements and waits for them
before the connections can be closed.
"""

import contextlib
import datetime as dt
import os
import queue
import threading
import weakref
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


def _build_one(
    model: Model, run: ModelRun, checks: dict[str, tuple[set[str], set[str]]], results: dict, stopped: set[str]
) -> tuple:
    """One model built, and the checks `checks` gives its builder run (`_checks_by_thread`), in this
    thread: (model, rows written, check outcomes). A model whose blocking check fails goes into
    `stopped`; one built from a model in `stopped` is not built: (model, the failed dependencies,
    None), and goes into `stopped` too."""
    if model.deps & stopped:
        stopped.add(model.name)
        return model, sorted(model.deps & stopped), None
    model_run = run.for_slice(run.partition_key, model)
    rows = build(model, model_run, results)
    names = checks[model.name][0]
    outcomes = run_checks(model, model_run, names) if names else []
    if any(not o.passed and o.severity == "error" for o in outcomes):
        stopped.add(model.name)
    return model, rows, outcomes


BUILDERS = 2  # threads building a step's models at once, each on a connection of its own (at most the CPUs)
_RUNNING: weakref.WeakSet = weakref.WeakSet()  # the builders whose threads have not all ended (`stop_builds`)


class _Builders:
    """A step's models (after the raw layer) built by as many threads as `connections`, each on its
    own connection to the run's database, a model as soon as the step's models it is built from are
    built and their blocking checks have passed: one thread builds the long chain of a quarter (the
    validation, the element values, the indicators, the scorecard) while the other builds what hangs
    off it (the staged values, the data-element values, the submissions, the alerts). Much of a
    model's time is DuckDB's, which lets go of the interpreter's lock, and the step's thread writes
    Dagster's events meanwhile: a national first run used 1.3 of the machine's 2 CPUs with one
    builder (docs/performance.md, thirty-fourth round).

    A builder runs a model's blocking checks that others of the step wait for itself, right after
    the build (`_build_one`; the other checks are the step thread's): a model built from it starts
    as soon as they have passed, and the other builder goes on meanwhile. Each model is committed
    by its own connection before it counts as built, so what another connection reads next is
    there. Models one Python function builds together are built one after the other (the first
    computes them all: `_build_slice`'s `results`). A ready model is taken by how many of the
    step's models are built from it, directly or not (the longest chains first), then in
    dependency order. The items go into `built` in the order the models are built; after the last,
    None; an error as (None, the error, None), and the others stop at their next model."""

    def __init__(
        self,
        todo: list[Model],
        run: ModelRun,
        checks: dict[str, tuple[set[str], set[str]]],
        results: dict,
        stopped: set[str],
        stop: threading.Event,
        connections: list,
        built: queue.Queue,
    ):
        self.run, self.checks, self.results, self.stopped, self.stop = run, checks, results, stopped, stop
        self.connections, self.built = connections, built
        self.wake = threading.Condition()
        names = {model.name for model in todo}
        first_of: dict[str, str] = {}
        self.after: dict[str, set[str]] = {}  # model -> the step's models it waits for
        for model in todo:
            self.after[model.name] = set(model.deps & names)
            if model.python is not None:
                first = first_of.setdefault(model.python, model.name)
                if first != model.name:
                    self.after[model.name].add(first)
        below: dict[str, set[str]] = {name: set() for name in names}  # model -> the step's models built from it
        for model in reversed(todo):
            for dep in self.after[model.name]:
                below[dep] |= below[model.name] | {model.name}
        self.todo = sorted(todo, key=lambda m: -len(below[m.name]))  # stable: dependency order among equals
        self.done: set[str] = set()  # built (and checked), or not built
        self.taken: set[str] = set()
        self.running = len(connections)
        self.threads = [
            threading.Thread(target=self._work, args=(con,), name=f"cchc-models-{i + 1}", daemon=True)
            for i, con in enumerate(connections)
        ]

    def start(self) -> None:
        _RUNNING.add(self)
        for thread in self.threads:
            thread.start()

    def stop_all(self) -> None:
        """Stop the builds: no model started from now on, the statements under way interrupted, and
        the threads waited for (a model's Python code ends on its own). From a builder's own thread
        (the garbage collector may finish an abandoned step there) the others are waited for, and
        that one ends after the model it is building."""
        self.stop.set()
        others = [thread for thread in self.threads if thread is not threading.current_thread()]
        while any(thread.is_alive() for thread in others):
            self.interrupt()
            for thread in others:
                thread.join(INTERRUPT_EVERY)

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def interrupt(self) -> None:
        """Interrupt the statements under way (the step stops early)."""
        for con in self.connections:
            con.interrupt()

    def _next(self) -> Model | None:
        with self.wake:
            while not self.stop.is_set():
                left = [model for model in self.todo if model.name not in self.taken]
                if not left:
                    return None
                model = next((m for m in left if self.after[m.name] <= self.done), None)
                if model is not None:
                    self.taken.add(model.name)
                    return model
                self.wake.wait(INTERRUPT_EVERY)
            return None

    def _work(self, con) -> None:
        run = replace(self.run, con=con)
        try:
            while (model := self._next()) is not None:
                item = _build_one(model, run, self.checks, self.results, self.stopped)
                with self.wake:
                    self.done.add(model.name)
                    self.wake.notify_all()
                self.built.put(item)
        except BaseException as exc:  # raised in the step (its traceback is the build's)
            self.stop.set()
            self.built.put((None, exc, None))
        finally:
            with self.wake:
                self.running -= 1
                last = self.running == 0
                self.wake.notify_all()
            if last:
                _RUNNING.discard(self)
                self.built.put(None)


def stop_builds() -> None:
    """Stop the builds of every step whose builders still run (`_Builders.stop_all`). A step stops
    its own builders when it ends; but an interruption (Ctrl-C, a terminated run) that reaches
    Dagster while the step waits for it to write an event leaves the step suspended, its builders
    going on with the model under way, and closing the database would then wait for the model's
    statements to end (minutes, for a national quarter's). The command calls this after each run."""
    for builders in list(_RUNNING):
        builders.stop_all()


def deferred_checks(todo: list[Model]) -> frozenset[tuple[str, str]]:
    """The checks (table, check) of these models, built in one step, that nothing in the step waits
    for: the warnings, and every check of a model none of the others is built from (its failure
    stops nothing in the step; later steps wait for its result, as they always did). The step's
    own thread runs them as it writes the model's events. The others, the blocking checks of a
    model others are built from, are run by its builder right after the build (`_build_one`), before
    a model built from it starts."""
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


def _events(
    context: AssetExecutionContext,
    item: tuple,
    reader,
    run: ModelRun,
    checks: dict[str, tuple[set[str], set[str]]],
    declared: dict[str, TableSchema | None] | None = None,
) -> Iterator:
    """What the step yields for one of the builders' items (and the warning for a model not built).
    `reader`: the step thread's own connection, where the model's metadata is read (`_metadata`)
    and the checks `checks` gives this thread are run (`_checks_by_thread`)."""
    model, rows, outcomes = item
    if outcomes is None:
        context.log.warning(f"{model.name}: not built, an upstream blocking check failed ({', '.join(rows)})")
        return
    model_run = replace(run.for_slice(run.partition_key, model), con=reader)
    metadata = _metadata(reader, model, rows, run, (declared or {}).get(model.name))
    names = checks[model.name][1]
    if names:
        outcomes = outcomes + run_checks(model, model_run, names)
    if outcomes and names:
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


def _own_connection(con, held: contextlib.ExitStack):
    """Another connection to the run's database (closed with `held`), on the same database and
    schema as `con`: each has its own transactions, and DuckDB runs their statements side by side."""
    other = con.cursor()
    held.callback(other.close)
    (database,) = con.execute("select current_database()").fetchone()
    other.execute('use "' + database.replace('"', '""') + '"')
    return other


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
            # processes, which a process running other threads (the builders') must not do
            threaded = next((i for i, model in enumerate(todo) if model.layer != "raw"), len(todo))
            # the step thread's own connection to the database, where it reads each model's metadata
            # (its rows are committed before its item comes): 2 ms a model that the builders, on the
            # step's longest path, no longer spend; the same database and schema as theirs
            reader = _own_connection(con, held)
            # their events wait until the builders have started: written first, they held them
            # back by some 10 ms a model (40 ms of a re-run at 1,000 workbooks); the same events, in
            # the same order. What was built before a failure is still reported.
            raw_built: list[tuple] = []

            def raw_events() -> Iterator:
                for item in raw_built:
                    yield from _events(context, item, reader, run, checks, declared=declared)

            try:
                raw_built.extend(_build_one(model, run, checks, results, stopped) for model in todo[:threaded])
            except BaseException:
                yield from raw_events()
                raise
            if threaded == len(todo):
                yield from raw_events()
                return
            # the others in threads of their own (`_Builders`), while this one writes Dagster's events
            # of those already built; the run's connection is the first builder's alone meanwhile
            built: queue.Queue = queue.Queue()
            stop = threading.Event()
            count = max(1, min(BUILDERS, os.cpu_count() or 1, len(todo) - threaded))
            connections = [con] + [_own_connection(con, held) for _ in range(count - 1)]
            builders = _Builders(todo[threaded:], run, checks, results, stopped, stop, connections, built)
            try:  # started inside: an interruption that lands as they start still stops them (`stop_all`)
                builders.start()
                yield from raw_events()
                while (item := built.get()) is not None:
                    if isinstance(item[1], BaseException):
                        raise item[1]
                    yield from _events(context, item, reader, run, checks, declared)
            finally:
                # the step stops early (a failure here, an interrupt): so do the builds, at their next
                # model or their running statement (a statement begun meanwhile is interrupted too)
                builders.stop_all()

    _step.__doc__ = f"The {step} models, in dependency order: {', '.join(sorted(names))}."
    return _step


def model_assets(root: Path = SQL_DIR) -> list:
    """Every model's asset, in the multi-asset steps of `steps` (`root`: another sql/ folder, for tests)."""
    declared = declared_schemas(list(topological(all_models(root).values())))
    return [build_step(step, models, declared) for step, models in steps(root).items()]
