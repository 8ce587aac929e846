"""The models: one SQL file per table of the pipeline, and the single source of each table's facts.

A model is `sql/<layer>/<name>.sql`. The file's name is the table's (and the Dagster asset's)
name; its folder is the layer (`dimensions`, `raw`, `staging`, `intermediate`, `curated`). The file
starts with a header of `-- field: value` lines:

    -- description: One row per agency x period x data element ...   (required; the asset's description)
    -- grain: agency_code, period_code, element_code                  (required; `col?` may be null)
    -- partition: year                                                (quarter | year | table)
    -- unassigned: yes                  (quarter models: also build the slice of workbooks without a period)
    -- incremental: agency_code         (a grain column: rewrite only the groups of rows, one per value, that changed)
    -- per_group: yes                   (incremental SQL models: a group's rows come from the same group of each input)
    -- ungrouped: loaded_at             (incremental models: columns a write sets on every row, not a change of a group)
    -- references: agency_code -> dim_agency.org_unit_code            (one per line; checked)
    -- check: name | error|warn | quality/file(param=value) | description   (one per line)
    -- python: pipelines.steps:scorecard          (Python models only: the function that builds the table)

Other comment lines are notes. What follows the header:

- **SQL models**: one `select`, which builds the model's slice. Its dependencies are the tables
  it reads, found by DuckDB's own parser (`json_serialize_sql`): nobody writes them down. An
  incremental one may follow it with `-- input: fingerprint` (per group, what its rows come from):
  its select then takes `$every` and `$groups`, and a run computes only the groups whose
  fingerprint changed (`pipelines.incremental.groups_by_fingerprint`).
- **Python models** (`python:`): optionally the table's `create table` (its column types, needed
  when a slice is empty), then named input queries, each after a `-- input: <name>` line and ended
  by `;`. The function reads them with `run.read(name)`; the tables they read are the model's
  dependencies. `-- input: <name> (lagged)` reads earlier periods of a table built later in the
  same run (the own-history outlier rules); it is not a dependency.

Partitioning says which slice a run replaces: `quarter` (rows of the run's partition key),
`year` (rows of the quarter's year, `period_year`), `table` (the whole table). With `incremental:`
the slice's rows are still computed whole, but only the groups of rows (one per value of that
column: an agency, a workbook) that differ from the table's are deleted and inserted again
(`pipelines.warehouse.write_changed_groups`): the table ends the same, and a re-run after one
changed workbook writes one agency's rows. `dimensions` models
are unpartitioned and built by the catalog job; every other layer is built by the quarterly job,
in one Dagster step (`assets/factory.py`), in dependency order.

Parameters a query may use: `$partition_key`, `$year`, `$as_of`, plus those a Python model or a
check passes.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.errors import ConfigError
from pipelines.warehouse import (
    SQL_DIR,
    in_list,
    replace_frame,
    replace_frame_as,
    replace_from_query,
    statement_body,
    table_exists,
)

LAYERS = ("dimensions", "raw", "staging", "intermediate", "curated")
PARTITIONS = ("quarter", "year", "table")
SEVERITIES = ("error", "warn")
UNASSIGNED = "unassigned"  # the slice of workbooks whose period cannot be read (pipelines.ingest.UNASSIGNED)

_FIELD = re.compile(r"^--\s*([a-z_]+):\s*(.*?)\s*$")
_INPUT = re.compile(r"^--\s*input:\s*([a-z_][a-z0-9_]*)\s*(\(lagged\))?\s*$", re.M)
_CHECK_SQL = re.compile(r"^((?:python:[a-z0-9_.]+:)?[a-z0-9_/]+)(?:\((.*)\))?$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_REFERENCE = re.compile(r"^([a-z_][a-z0-9_]*)\s*->\s*([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$")


# The pipeline's own state a model's SQL may read (sql/ddl): a `fingerprint` input may read the
# fingerprints its source keeps with its rows (`group_state`, written in the same transaction as
# those rows). Not a table the model is built from: not a dependency, nor an asset upstream of it.
STATE_READS = frozenset({"group_state"})


class ModelError(ConfigError):
    """A model file breaks the header contract (names the file and the line). Whoever adds a table
    causes and fixes it: the CLI prints it as a message (exit code 2), not as a defect."""

    def __str__(self) -> str:
        detail = super().__str__()
        return (
            "Tệp mô hình trong sql/ không hợp lệ, xem docs/models.md / a model file under sql/ is not valid"
            f" (see docs/models.md): {detail}"
        )


@dataclass(frozen=True)
class Reference:
    column: str
    table: str
    key: str


@dataclass(frozen=True)
class Check:
    """A check declared in a header: offending rows from a SQL file under sql/ (none: passed)."""

    name: str
    severity: str  # error (blocking) | warn
    sql: str  # e.g. quality/negative_derived_flows, or python:module:function (returns the offending rows)
    params: dict
    description: str


@dataclass(frozen=True)
class Input:
    name: str
    sql: str
    lagged: bool


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    path: Path
    description: str
    grain: tuple[str, ...]
    partition: str
    unassigned: bool = False
    incremental: str | None = None  # a grain column: only the groups of rows (one per value) that changed are rewritten
    per_group: bool = False  # a group's rows come from the same group of every non-dimension input (`scope_sources`)
    # columns the model's writes set on rows of groups they do not count as changed (a sync's time):
    # a `per_group` model reading the table may not read them
    ungrouped: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    checks: tuple[Check, ...] = ()
    python: str | None = None
    body: str = ""  # SQL models: the select
    ddl: str = ""  # Python models: the create table, if any
    inputs: tuple[Input, ...] = ()
    notes: str = ""
    reads: frozenset[str] = field(default_factory=frozenset)  # every table read (lagged included)

    @property
    def deps(self) -> frozenset[str]:
        """The tables this model depends on (read, lagged reads excluded)."""
        current = set(tables_read(self.body)) if self.body else set()
        for item in self.inputs:
            if not item.lagged:
                current |= tables_read(item.sql)
        return frozenset(current - {self.name} - STATE_READS)

    @property
    def fingerprint_sql(self) -> str | None:
        """A SQL model's `-- input: fingerprint` (per group, what its rows are computed from), if any."""
        return next((item.sql for item in self.inputs if item.name == "fingerprint"), None) if self.python is None else None

    @property
    def key_columns(self) -> list[str]:
        return [c.rstrip("?") for c in self.grain]

    @property
    def slice_column(self) -> str | None:
        return {"quarter": "partition_key", "year": "period_year"}.get(self.partition)

    @property
    def published_name(self) -> bool:
        return self.name.startswith(("dim_", "fct_"))


# ------------------------------------------------------------------------------------- parsing
@functools.cache
def tables_read(sql: str) -> frozenset[str]:
    """The tables a select reads (CTE names excluded), from DuckDB's parser."""
    con = _parser()
    tree = json.loads(con.execute("select json_serialize_sql($1)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise ModelError(tree.get("error_message", "unparsable SQL"))
    tables: set[str] = set()
    ctes: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                tables.add(node["table_name"])
            if isinstance(node.get("cte_map"), dict):
                ctes.update(entry["key"] for entry in node["cte_map"].get("map", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return frozenset(tables - ctes)


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _param_value(text: str):
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


def parse_model(path: Path) -> Model:
    """Read one model file (raises ModelError naming the file and line)."""
    text = path.read_text(encoding="utf-8")
    layer, name = path.parent.name, path.stem
    if layer not in LAYERS:
        raise ModelError(f"{path}: folder {layer!r} is not a layer ({', '.join(LAYERS)})")
    if not _NAME.match(name):
        raise ModelError(f"{path}: a model's name is lower-case letters, digits and _ (it names a table)")
    fields: dict[str, list[tuple[int, str]]] = {}
    notes: list[str] = []
    lines = text.splitlines()
    body_start = len(lines)
    for number, line in enumerate(lines, 1):
        if not line.startswith("--") or _INPUT.match(line):  # the header ends at the first statement or input
            body_start = number - 1
            break
        match = _FIELD.match(line)
        if match:
            fields.setdefault(match.group(1), []).append((number, match.group(2)))
        elif line.strip() != "--":
            notes.append(line[2:].strip())
    rest = "\n".join(lines[body_start:]).strip()
    for number, value in fields.get("grain", []):
        bad = [c for c in _split_list(value) if not _NAME.match(c.rstrip("?"))]
        if bad:
            raise ModelError(f"{path}:{number}: grain columns are names (a trailing ? may be null), not {', '.join(bad)}")

    def one(key: str, default: str | None = None) -> str:
        values = fields.get(key, [])
        if len(values) > 1:
            raise ModelError(f"{path}:{values[1][0]}: '{key}:' is given twice")
        if not values:
            if default is None:
                raise ModelError(f"{path}: the header has no '-- {key}: ...' line")
            return default
        return values[0][1]

    unknown = set(fields) - {
        "description",
        "grain",
        "partition",
        "unassigned",
        "incremental",
        "per_group",
        "ungrouped",
        "references",
        "check",
        "python",
    }
    if unknown:
        first = min(line for key in unknown for line, _ in fields[key])
        raise ModelError(f"{path}:{first}: unknown header field(s) {', '.join(sorted(unknown))}")
    partition = one("partition", "table" if layer == "dimensions" else None)
    if partition not in PARTITIONS:
        raise ModelError(f"{path}: partition {partition!r} is not one of {', '.join(PARTITIONS)}")
    if layer == "dimensions" and partition != "table":
        raise ModelError(f"{path}: dimensions are whole tables (partition: table)")
    grain = _split_list(one("grain"))
    incremental = one("incremental", "") or None
    if incremental is not None and incremental not in [c.rstrip("?") for c in grain]:
        number = fields["incremental"][0][0]
        raise ModelError(
            f"{path}:{number}: 'incremental:' names one of the grain columns ({', '.join(grain)}), not {incremental!r}"
        )
    per_group = one("per_group", "no").lower() in ("yes", "true")
    if per_group and (incremental is None or partition == "table" or fields.get("python")):
        number = fields["per_group"][0][0]
        raise ModelError(f"{path}:{number}: 'per_group: yes' is for an 'incremental:', partitioned SQL model")
    ungrouped = tuple(_split_list(one("ungrouped", "")))
    if ungrouped and incremental is None:
        number = fields["ungrouped"][0][0]
        raise ModelError(f"{path}:{number}: 'ungrouped:' is for an 'incremental:' model")
    references = []
    for number, value in fields.get("references", []):
        match = _REFERENCE.match(value)
        if not match:
            raise ModelError(f"{path}:{number}: write 'references: column -> table.column', not {value!r}")
        references.append(Reference(*match.groups()))
    checks = []
    for number, value in fields.get("check", []):
        parts = [p.strip() for p in value.split("|")]
        if len(parts) != 4 or parts[1] not in SEVERITIES or not _CHECK_SQL.match(parts[2]):
            raise ModelError(f"{path}:{number}: write 'check: name | error or warn | folder/sql_file(param=value) | description'")
        sql, params = _CHECK_SQL.match(parts[2]).groups()
        bound = dict(_param_value_pair(p) for p in _split_list(params or ""))
        checks.append(Check(parts[0], parts[1], sql, bound, parts[3]))
    python = fields.get("python", [(0, None)])[0][1]
    body, ddl, inputs = "", "", []
    if python:
        starts = list(_INPUT.finditer(rest))
        ddl = (rest[: starts[0].start()] if starts else rest).strip()
        for i, match in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(rest)
            inputs.append(Input(match.group(1), statement_body(rest[match.end() : end]), bool(match.group(2))))
        if ddl and not re.match(rf"create table if not exists {name}\b", ddl.lstrip("; \n"), re.I):
            raise ModelError(f"{path}: before the inputs, only 'create table if not exists {name} (...)' may stand")
    else:
        starts = list(_INPUT.finditer(rest))
        body = statement_body(rest[: starts[0].start()] if starts else rest)
        if not body:
            raise ModelError(f"{path}: a SQL model needs its select (or a 'python:' line)")
        for i, match in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(rest)
            inputs.append(Input(match.group(1), statement_body(rest[match.end() : end]), bool(match.group(2))))
        if [item.name for item in inputs] not in ([], ["fingerprint"]) or any(item.lagged for item in inputs):
            raise ModelError(f"{path}: after its select, a SQL model may have one '-- input: fingerprint' (no other input)")
        if inputs and (
            not incremental or partition == "table" or not {"$every", "$groups"} <= set(re.findall(r"\$[a-z_]+", body))
        ):
            raise ModelError(
                f"{path}: a SQL model with '-- input: fingerprint' is 'incremental:', partitioned, and its select"
                " returns only the groups in $groups unless $every"
            )
    try:
        reads = set(tables_read(body)) if body else set()
        for item in inputs:
            reads |= tables_read(item.sql)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc.args[0]}") from None
    return Model(
        name=name,
        layer=layer,
        path=path,
        description=one("description"),
        grain=grain,
        partition=partition,
        unassigned=one("unassigned", "no").lower() in ("yes", "true"),
        incremental=incremental,
        per_group=per_group,
        ungrouped=ungrouped,
        references=tuple(references),
        checks=tuple(checks),
        python=python,
        body=body,
        ddl=ddl,
        inputs=tuple(inputs),
        notes=" ".join(notes),
        reads=frozenset(reads),
    )


def _param_value_pair(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key.strip(), _param_value(value)


@functools.cache
def _load(root: Path) -> dict[str, Model]:
    models: dict[str, Model] = {}
    for layer in LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            model = parse_model(path)
            models[model.name] = model
    _check_graph(models)
    return models


def all_models(root: Path = SQL_DIR) -> dict[str, Model]:
    """Every model, by name (parsed once per process)."""
    return _load(Path(root))


def _check_graph(models: dict[str, Model]) -> None:
    order = {layer: i for i, layer in enumerate(LAYERS)}
    for model in models.values():
        for dep in model.deps:
            if dep in models and order[models[dep].layer] > order[model.layer]:
                raise ModelError(f"{model.path}: reads {dep}, a later layer ({models[dep].layer}); layers only read earlier ones")
        for ref in model.references:
            if ref.table not in models:
                raise ModelError(f"{model.path}: references {ref.table}, which is not a model")
        if model.per_group:
            inputs = non_dimension_inputs(model, models)
            unlike = [
                d for d in inputs
                if d not in models or models[d].incremental != model.incremental or models[d].partition != model.partition
            ]  # fmt: skip
            if not inputs or unlike:
                raise ModelError(
                    f"{model.path}: 'per_group: yes' needs every table it reads (besides dimensions) to be"
                    f" 'incremental: {model.incremental}' and 'partition: {model.partition}' too"
                    + (f"; not {', '.join(unlike)}" if unlike else "")
                )
            if "$as_of" in model.body:
                raise ModelError(f"{model.path}: a 'per_group: yes' model may not read $as_of (its groups would age unseen)")
            for dep in inputs:
                read = [c for c in models[dep].ungrouped if re.search(rf"\b{re.escape(c)}\b", model.body, re.I)]
                if read:
                    raise ModelError(
                        f"{model.path}: a 'per_group: yes' model may not read {', '.join(read)} of {dep}"
                        " ('ungrouped:' there: its writes set it on every row without a change of the group)"
                    )
    topological(models.values())  # raises on a cycle


def non_dimension_inputs(model: Model, models: dict[str, Model]) -> list[str]:
    """The tables a model reads besides dimensions, in name order (a table that is not a model counts)."""
    return [d for d in sorted(model.deps) if not (d in models and models[d].layer == "dimensions")]


def topological(models: Iterable[Model]) -> list[Model]:
    """Models in dependency order (ties by layer, then name)."""
    models = list(models)
    names = {m.name for m in models}
    pending = {m.name: {d for d in m.deps if d in names} for m in models}
    by_name = {m.name: m for m in models}
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    done: list[Model] = []
    while pending:
        ready = sorted((n for n, deps in pending.items() if not deps), key=lambda n: (rank[by_name[n].layer], n))
        if not ready:
            raise ModelError(f"dependency cycle among {', '.join(sorted(pending))}")
        for name in ready:
            done.append(by_name[name])
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return done


# ------------------------------------------------------------------------------------- running
@dataclass
class ModelRun:
    """What a model is built for: the connection, the slice, and what a Python model may need."""

    con: duckdb.DuckDBPyConnection
    partition_key: str | None = None
    now: dt.datetime | None = None
    catalog_loader: Callable | None = None
    raw_dir: Path | None = None
    register_path: Path | None = None
    cache_dir: Path | None = None
    limits: object = None
    model: Model | None = None

    @property
    def year(self) -> int | None:
        if not self.partition_key or self.partition_key == UNASSIGNED:
            return None
        from pipelines.periods import partition_report

        return partition_report(self.partition_key).year

    @property
    def catalog(self):
        """The catalog (its loader caches it while the catalog files are unchanged)."""
        if self.catalog_loader is None:
            raise ModelError("this model needs the catalog: pass catalog_loader")
        return self.catalog_loader()

    def params(self, extra: dict | None = None) -> dict:
        return {"partition_key": self.partition_key, "year": self.year, "as_of": self.now} | dict(extra or {})

    def input_sql(self, name: str) -> str:
        """The select of a Python model's named input (no trailing semicolon)."""
        item = next((i for i in self.model.inputs if i.name == name), None)
        if item is None:
            raise ModelError(f"{self.model.path}: no '-- input: {name}'")
        return item.sql

    def execute(self, sql: str, **params) -> duckdb.DuckDBPyConnection:
        """Run a select with the run's parameters and these (those it names are bound)."""
        return self.con.execute(sql, _bind(sql, self.params(params)))

    def read(self, name: str, **params) -> pd.DataFrame:
        """A Python model's named input query, as a DataFrame."""
        return self.execute(self.input_sql(name), **params).df()

    def bound(self, name: str, **params) -> tuple[str, dict]:
        """A Python model's named input query and the parameters it names (the run's and these),
        for a caller that queries it where it is (`pipelines.validation.outliers.History`)."""
        sql = self.input_sql(name)
        return sql, _bind(sql, self.params(params))

    def for_slice(self, partition_key: str, model: Model) -> ModelRun:
        return replace(self, partition_key=partition_key, model=model)


def _bind(sql: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def _function(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def slice_of(model: Model, run: ModelRun) -> dict:
    return {"partition_key": run.partition_key} if model.partition == "quarter" else {"period_year": run.year}


def build(model: Model, run: ModelRun, _results: dict | None = None) -> int:
    """Build one model for the run's slice (and the unassigned slice when the model says so);
    returns the rows written to the run's slice."""
    keys = [run.partition_key]
    if model.unassigned and run.partition_key != UNASSIGNED:
        keys.append(UNASSIGNED)
    written = 0
    for i, key in enumerate(keys):
        if i and _nothing_unassigned(model, run):
            continue
        rows = _build_slice(model, run.for_slice(key, model), _results if _results is not None else {})
        if i == 0:
            written = rows
    return written


def _nothing_unassigned(model: Model, run: ModelRun) -> bool:
    """Whether the model's unassigned slice is empty and stays so: its rows there and those of every
    table it reads (other than dimensions), all quarter tables, are none (one look, some 1 ms).
    Its rows come from workbooks without a period; where none is on record there is nothing to
    compute (built, it cost a quarter's re-run some ten statements per model). The slice counts as
    unchanged for the next publish (pipelines.incremental.unchanged)."""
    from pipelines import incremental

    models = all_models()
    inputs = non_dimension_inputs(model, models)
    if not inputs or any(d not in models or models[d].partition != "quarter" for d in inputs):
        return False
    found = " or ".join(f'exists (select 1 from "{t}" where partition_key = $u)' for t in (model.name, *inputs))
    try:
        if run.con.execute(f"select {found}", {"u": UNASSIGNED}).fetchone()[0]:
            return False
    except duckdb.CatalogException:  # a table not built yet (a first run): built as always
        return False
    slice_key = incremental.slice_id({"partition_key": UNASSIGNED})
    incremental.LAST_SCOPE[(model.name, slice_key)] = ()
    incremental.unchanged(run.con, model.name, slice_key)
    return True


MAX_SCOPED_GROUPS = 200  # more changed groups than this: the whole slice is computed


def scope_sources(model: Model, models: dict[str, Model] | None = None) -> tuple[tuple[str, ...], list[str]]:
    """(the tables a `per_group` model's groups are computed from, in name order; its other inputs:
    dimensions): the model computes only the groups those tables' writes changed
    (pipelines/incremental.py). ((), []) for any other model. The header's contract is checked
    when the models are loaded (`_check_graph`)."""
    models = models if models is not None else all_models()
    if not model.per_group:
        return (), []
    sources = tuple(non_dimension_inputs(model, models))
    return sources, sorted(model.deps - set(sources))


def _build_slice(model: Model, run: ModelRun, results: dict) -> int:
    from pipelines import incremental

    con = run.con
    slice_ = None if model.partition == "table" else slice_of(model, run)
    slice_key = incremental.slice_id(slice_)
    changes: dict = {}

    def wrote(sources: tuple[str, ...] = (), fingerprint: str | None = None):
        def record() -> None:
            read = (sources, fingerprint) if sources else None
            incremental.wrote(con, model.name, slice_key, changes.get("groups"), read=read)

        return record

    if model.python is None:
        sources, dimensions = scope_sources(model)
        fingerprint = scope = None
        params = run.params()
        on_write = wrote()
        if sources:  # the model's state, its sources' and its dimensions' tokens: one look
            found = incremental.state(con, (model.name, *sources, *dimensions), (slice_key, "table"))
            fingerprint = incremental.fingerprint(con, model.body, dimensions, found)
            scope = incremental.groups_to_compute(con, model.name, sources, slice_key, fingerprint, found)
            on_write = wrote(sources, fingerprint)
        elif model.fingerprint_sql and slice_ is not None:
            scope, on_write = _fingerprint_scope(model, run, slice_, slice_key, on_write)
        if scope is not None and (len(scope) > MAX_SCOPED_GROUPS or (model.fingerprint_sql and None in scope)):
            scope = None  # many groups, or the null group (not one $groups can name): the whole slice
        if model.fingerprint_sql:
            params |= {"every": scope is None, "groups": [g for g in scope or () if g is not None]}
        incremental.LAST_SCOPE[(model.name, slice_key)] = scope
        return replace_from_query(
            con, model.name, model.body, params, slice_, str(model.path), model.incremental,
            scope=scope, changes=changes, on_write=on_write,
        )  # fmt: skip
    if model.ddl and not table_exists(con, model.name):
        con.execute(model.ddl)
    memo = (model.python, run.partition_key)
    if memo not in results:  # one function may build several models (the raw tables, external values, dimensions)
        results[memo] = _function(model.python)(run)
    out = results[memo]
    if isinstance(out, dict):
        out = out[model.name]
    if isinstance(out, int):  # the function wrote the table itself (and says what changed, pipelines/incremental.py)
        return out
    if model.partition == "table":
        if not model.ddl:
            return replace_frame_as(con, model.name, out, on_write=wrote())
        return replace_frame(con, model.name, out, on_write=wrote())
    return replace_frame(con, model.name, out, slice_, key=model.incremental, changes=changes, on_write=wrote())


def _fingerprint_scope(model: Model, run: ModelRun, slice_: dict, slice_key: str, on_write: Callable[[], None]):
    """(the groups to compute, None for all; the write's callback, which also keeps the groups'
    fingerprints) for a SQL model with a `fingerprint` input (pipelines.incremental.groups_by_fingerprint)."""
    from pipelines import incremental
    from pipelines.warehouse import _where

    con = run.con
    models = all_models()
    dimensions = sorted(d for d in model.deps if d in models and models[d].layer == "dimensions")
    common = incremental.fingerprint(con, model.body + "\n" + model.fingerprint_sql, dimensions) + repr(sorted(slice_.items()))
    where, where_params = _where(slice_)
    sql = model.fingerprint_sql
    scope, prints = incremental.groups_by_fingerprint(
        con, model.name, slice_key, sql, _bind(sql, run.params()), common, model.incremental, where, where_params
    )

    def record() -> None:
        on_write()
        incremental.keep_fingerprints(con, model.name, slice_key, prints, model.incremental, where, where_params)

    return scope, record


def build_all(names: Iterable[str], run: ModelRun, root: Path = SQL_DIR) -> dict[str, int]:
    """Build models in dependency order; returns rows written per model."""
    models = all_models(root)
    results: dict = {}
    return {m.name: build(m, run, results) for m in topological(models[n] for n in names)}


def layer_models(layer: str) -> list[Model]:
    return [m for m in topological(all_models().values()) if m.layer == layer]


EXTERNAL_VALUES = "pipelines.steps:external_values"  # the function that builds the external-values tables


def command_groups() -> tuple[set[str], set[str]]:
    """(the dimension models, the external-values models): the groups a command may leave out of
    its run while their inputs are unchanged (pipelines/cli.py)."""
    models = all_models()
    return (
        {name for name, model in models.items() if model.layer == "dimensions"},
        {name for name, model in models.items() if model.python == EXTERNAL_VALUES},
    )


# -------------------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class CheckOutcome:
    name: str
    severity: str  # error (blocking) | warn
    passed: bool
    rows: pd.DataFrame  # offending rows (a sample of at most 50)
    count: int
    description: str
    workbooks: int | None = None  # distinct workbooks among the offending rows, when they name them


GRAIN_CHECK = "grain"


def check_specs(model: Model) -> list[tuple[str, str, str]]:
    """(name, severity, description) of every check of a model: its grain, its references, its declared checks."""
    specs = []
    # the tables analysts get (dim_, fct_) check their grain as they are built; the other layers'
    # grain is documented (and tested), not checked on every run: a check costs Dagster events
    if model.grain and model.published_name:
        shown = ", ".join(c.rstrip("?") + (" (may be null)" if c.endswith("?") else "") for c in model.grain)
        specs.append((GRAIN_CHECK, "error", f"One row per {shown}: the key is unique and its required parts are not null."))
    for ref in model.references:
        specs.append(
            (
                f"{ref.column}_in_{ref.table}",
                "error",
                f"Every {ref.column} (when given) is a {ref.table}.{ref.key}.",
            )
        )
    specs += [(c.name, c.severity, c.description) for c in model.checks]
    return specs


def slice_filter(model: Model, run: ModelRun) -> tuple[str, dict]:
    """The SQL predicate (and its parameters) of the rows a run of the model wrote."""
    if model.partition == "table" or run.partition_key is None:
        return "true", {}
    column = model.slice_column
    keys = [run.partition_key] + ([UNASSIGNED] if model.unassigned and model.partition == "quarter" else [])
    if model.partition == "year":
        return "period_year = $slice_0", {"slice_0": run.year}
    return " or ".join(f"{column} = $slice_{i}" for i in range(len(keys))), {f"slice_{i}": k for i, k in enumerate(keys)}


def grain_rows(con, table: str, grain: Iterable[str], where: str = "true", params: dict | None = None) -> pd.DataFrame:
    """Rows breaking a grain within `where`: each duplicated key (with its count) and each row with a
    null in a key column that may not be null. Empty: the grain holds."""
    grain = list(grain)
    columns = ", ".join(f'"{c.rstrip("?")}"' for c in grain)
    required = [c for c in grain if not c.endswith("?")]
    nulls = " or ".join(f'"{c}" is null' for c in required) or "false"
    sql = f"""
        select 'duplicate key' as problem, {columns}, count(*) as rows
        from (select * from "{table}" where {where}) group by all having count(*) > 1
        union all
        select 'null in key' as problem, {columns}, count(*) as rows
        from (select * from "{table}" where {where}) where {nulls} group by all
    """
    return con.execute(sql, params or {}).df()


def reference_rows(con, table: str, ref: Reference, where: str = "true", params: dict | None = None) -> pd.DataFrame:
    """The values of `ref.column` within `where` that are not a key of `ref.table` (with their row
    counts). Empty: the reference holds."""
    return con.execute(
        f'''select "{ref.column}", count(*) as rows from "{table}" as m
            where ({where}) and "{ref.column}" is not null
              and not exists (select 1 from "{ref.table}" as d where d."{ref.key}" = m."{ref.column}")
            group by all order by 1''',
        params or {},
    ).df()


def _check_state(model: Model, name: str, con) -> tuple[str, str] | None:
    """(the state entry of a model's check that may look at the groups a run rewrote only, what it
    was last passed under), None when the check must look at every row (`_check_scope`).

    The grain is checked under the grain itself. A reference (`<column>_in_<table>`: every value is
    a key of the table) is checked under the referenced table's write token (a dimension's: a
    dimension rewritten with other rows makes every row of the model worth looking at again); a
    table with no token (never written through `pipelines.incremental`) is looked at whole."""
    from pipelines import incremental

    if model.partition != "year" or not model.incremental:
        return None
    if name == GRAIN_CHECK:
        return (f"{model.name}:{GRAIN_CHECK}", repr(model.grain)) if _grain_narrowable(model) else None
    ref = next((r for r in model.references if f"{r.column}_in_{r.table}" == name), None)
    if ref is None:
        return None
    found = incremental.state(con, (ref.table,), ("table",)).get((ref.table, "table"))
    if found is None or found[0] is None:
        return None
    return f"{model.name}:{name}", repr((ref.column, ref.table, ref.key, found[0]))


def _grain_narrowable(model: Model) -> bool:
    """Whether the model's grain check may look at the groups a run rewrote only (`_check_scope`):
    a model kept by year (a year's four report windows and derived quarters: a national
    fct_data_element_value's 300,000 rows, 30-60 ms a look) written group by group by a column of
    its grain. A quarter's slice costs less to look at whole (3-8 ms at 4,000 workbooks) than the
    state's reads and writes."""
    return model.partition == "year" and model.incremental in {c.rstrip("?") for c in model.grain}


def _check_scope(model: Model, run: ModelRun, name: str) -> tuple | None:
    """The groups of rows the model's check `name` needs to look at in the run's slice, None for all.

    The grain can only break inside a group (rows with the same key are in the same group:
    `_grain_narrowable`), and a reference breaks row by row: a group the run did not rewrite
    still holds if it held before and the referenced table is the one it held against. After a
    write that rewrote groups K (known in this process) of a table on which the check last passed
    exactly as it was before that write, only K is looked at (pipelines.incremental.groups_to_compute,
    as for a model's source); otherwise (another process, a failed check, a whole rewrite, another
    referenced table) every row. A national year's reference checks looked at 1.8 million rows of
    fct_data_element_value (60-75 ms each) for every re-run of one workbook of a fourth quarter."""
    from pipelines import incremental

    state = _check_state(model, name, run.con)
    if state is None:
        return None
    checked, print_ = state
    scope = incremental.groups_to_compute(run.con, checked, model.name, incremental.slice_id(slice_of(model, run)), print_)
    return None if scope is None else tuple(sorted(scope, key=lambda g: (g is None, str(g))))


def _checked(model: Model, run: ModelRun, name: str, held: bool) -> None:
    """Record whether the model's check `name` holds on its slice as it is now (`_check_scope`): a
    check that failed makes the next one look at every row, whatever was rewritten since."""
    from pipelines import incremental

    state = _check_state(model, name, run.con)
    if state is None:
        return
    checked, print_ = state
    slice_key = incremental.slice_id(slice_of(model, run))
    if held:
        incremental.read(run.con, checked, model.name, slice_key, print_)
    else:
        incremental.unread(run.con, checked, slice_key)


def run_checks(model: Model, run: ModelRun, selected: set[str] | None = None) -> list[CheckOutcome]:
    """Evaluate a model's checks on the slice the run just wrote."""
    con = run.con
    where, params = slice_filter(model, run)
    outcomes = []
    for name, severity, description in check_specs(model):
        if selected is not None and name not in selected:
            continue
        if name == GRAIN_CHECK:
            groups = _check_scope(model, run, name)
            if groups == ():  # no group rewritten since the grain last held: nothing new to look at
                rows = pd.DataFrame(columns=["problem", *(c.rstrip("?") for c in model.grain), "rows"])
            else:
                narrow = where if groups is None else f"({where}) and {in_list(model.incremental, groups)}"
                rows = grain_rows(con, model.name, model.grain, narrow, params)
            count = int(rows["rows"].sum()) if len(rows) else 0
            _checked(model, run, name, held=not count)
        elif (ref := next((r for r in model.references if f"{r.column}_in_{r.table}" == name), None)) is not None:
            groups = _check_scope(model, run, name)
            if groups == ():  # no group rewritten since the reference last held, against the same table
                rows = pd.DataFrame(columns=[ref.column, "rows"])
            else:
                narrow = where if groups is None else f"({where}) and {in_list(model.incremental, groups)}"
                rows = reference_rows(con, model.name, ref, narrow, params)
            count = int(rows["rows"].sum()) if len(rows) else 0
            _checked(model, run, name, held=not count)
        else:
            check = next(c for c in model.checks if c.name == name)
            if check.sql.startswith("python:"):
                rows = _function(check.sql.removeprefix("python:"))(run, **check.params)
            else:
                sql = (SQL_DIR / f"{check.sql}.sql").read_text(encoding="utf-8")
                rows = con.execute(sql, _bind(sql, run.params(check.params))).df()
            count = len(rows)
        workbooks = int(rows["file_name"].nunique()) if "file_name" in rows.columns else None
        outcomes.append(CheckOutcome(name, severity, rows.empty, rows.head(50), count, description, workbooks))
    return outcomes
