"""The Python models: the functions named by the `-- python:` line of a model file (sql/<layer>/).

Each takes a `pipelines.models.ModelRun` (the connection, the slice, the catalog, the raw folder)
and returns the rows of the model's slice as a DataFrame (the runner writes them), or a dict of
them when one function builds several models (the raw tables, the dimensions, external values),
or row counts when it wrote the tables itself. Their input queries are in the model files
(`run.read(name)`), so the tables they read are the models' dependencies.

`build_quarter` runs every quarterly model in order without Dagster (tests, tools).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
from pathlib import Path

import pandas as pd

from pipelines import ingest
from pipelines.catalog import Catalog
from pipelines.dims import DIMENSIONS
from pipelines.models import EXTERNAL_VALUES, UNASSIGNED, ModelRun, all_models, build_all
from pipelines.periods import Period, parse_date, partition_report
from pipelines.tasks import assess_task, parse_due, parse_status
from pipelines.validation import FINDING_COLUMNS, History, ValidationInput, rule_engine
from pipelines.warehouse import SQL_DIR, replace_frame, sql_text, statement_body, table_exists


def dimensions(run: ModelRun) -> dict[str, pd.DataFrame]:
    """dim_* tables from the catalog (whole-table replace)."""
    return {name: build(run.catalog) for name, build in DIMENSIONS.items()}


def publish_dimensions(con, catalog) -> dict[str, int]:
    """Build every dimension now (a fresh database, tests)."""
    return build_all(DIMENSIONS, ModelRun(con, catalog_loader=lambda: catalog))


def ensure_dimensions(con, catalog) -> None:
    """Publish the dimensions when a fresh database has none yet."""
    if not all(table_exists(con, name) for name in DIMENSIONS):
        publish_dimensions(con, catalog)


def read_workbooks(run: ModelRun) -> dict[str, int]:
    """raw_* tables: every workbook of the partition, and those whose period cannot be read
    (the unassigned slice is written in the same pass)."""
    from pipelines.publish import mark_pending

    con = run.con
    if run.partition_key == UNASSIGNED:  # written with the partition's own slice
        return {
            t: con.execute(f"select count(*) from {t} where partition_key = $p", {"p": UNASSIGNED}).fetchone()[0]
            for t in ingest.RAW_TABLES
        }
    ensure_dimensions(con, run.catalog)
    return ingest_partition(
        con,
        run.catalog,
        run.raw_dir,
        run.partition_key,
        run.now,
        run.register_path,
        run.cache_dir,
        run.limits,
        # with the quarter's first write, in its transaction: the next publish carries the quarter
        # (a commit of its own cost 4-5 ms, the sync of DuckDB's log)
        on_write=functools.partial(mark_pending, con, run.partition_key),
    )


def ingest_partition(
    con, catalog, raw_dir, partition_key, now, register_path=None, cache_dir=None, limits=None, on_write=None
) -> dict[str, int]:
    """The raw_* tables of the partition (and of the unassigned slice), in step with the raw folder:
    only new and changed workbooks are read and written (pipelines.ingest.sync_raw_tables; `on_write`
    runs first in its transaction)."""
    reporters = [unit.code for unit in catalog.reporters]
    # the register is read only if some workbook's receipt is looked up (a new or changed one)
    register = functools.partial(ingest.load_receipt_register, register_path)
    return ingest.sync_raw_tables(
        con,
        Path(raw_dir),
        partition_key,
        reporters,
        register,
        now,
        cache_dir,
        limits,
        ingest.register_print(register_path),
        on_write=on_write,
    )


HISTORY_YEARS = 3  # the agency's own history for outlier rules: the report windows of the last 3 years

FINDING_KEY = ["submission_id", "source", "rule_id", "sheet", "cell", "code", "value"]


def validate(run: ModelRun) -> int:
    """int_finding: read findings plus every broken validation rule, for the slice's workbooks.

    Workbooks are validated by cohort (`RuleEngine.cohort_of`: the jurisdiction and level the peer
    rules compare within). A cohort whose fingerprint (`_cohort_fingerprints`: its workbooks, their
    agencies' history, the rules, the catalog and the collected period) is the one it was last
    validated from keeps all its rule findings, and its figures are not read again; the other
    cohorts are validated whole. Within them, a workbook validated before under the same rules (its
    submission_id is its content) keeps its workbook-rule findings (value, duplicate, compare
    rules) and only the rules that look beyond it (peers, own history, receipt and period) run.
    Writes int_finding and validation_state together."""
    from pipelines import incremental
    from pipelines.warehouse import transaction

    collecting = partition_report(run.partition_key) if run.partition_key != UNASSIGNED else None
    span: dict | None = None
    history_prints: dict = {}
    if collecting and table_exists(run.con, "int_element_value"):
        # a bounded read: a quarter costs the same after ten years of history
        span = {"first_year": collecting.year - HISTORY_YEARS, "year": collecting.year}
        span["before"] = collecting.year * 12 + collecting.last_month
        sql = run.input_sql("history")
        sums = f"select agency_code, count(*), sum(hash(period_code, code, value, kind)::hugeint) from ({sql}\n) group by all"
        rows = run.execute(sums, **span, every=True, agencies=[]).fetchall()
        history_prints = {agency: (int(n), int(h)) for agency, n, h in rows}
    engine = rule_engine(run.catalog)
    submissions = run.read("submissions")
    current = set(submissions["submission_id"])
    cohorts = engine.cohort_of(submissions)
    prints = _cohort_fingerprints(engine, run, submissions, cohorts, history_prints, collecting)
    state = run.read("validated", version=engine.version)
    validated = dict(zip(state["submission_id"], state["cohort_fingerprint"], strict=True))
    validated_rows = len(state)
    known = set(validated) & current
    unchanged = {
        sid for sid, fp in zip(state["submission_id"], state["cohort_fingerprint"], strict=True) if prints.get(sid) == fp
    }
    again = ~submissions["submission_id"].isin(unchanged)
    again = cohorts.isin(set(cohorts[again]))  # whole cohorts: the peer rules need every workbook of one
    on_record = run.read("on_record", version=engine.version)
    reused = on_record["submission_id"].isin(set(submissions.loc[~again, "submission_id"]))
    workbook_rules = on_record["submission_id"].isin(known) & on_record["rule_id"].isin(engine.workbook_rule_ids)
    kept = on_record[reused | workbook_rules]
    findings = pd.DataFrame(columns=FINDING_COLUMNS)
    if again.any():
        every = bool(again.all())
        chosen = submissions[again]
        agencies = [] if every else sorted(set(chosen["declared_agency_code"].dropna()))
        # the history stays in DuckDB: the outlier rules ask it for summaries per agency and code
        history = History(run.con, *run.bound("history", **span, every=every, agencies=agencies)) if span else pd.DataFrame()
        values = run.read("values", every=every, sids=[] if every else sorted(chosen["submission_id"]))
        data = ValidationInput(
            chosen, values, history, collecting.code if collecting else None, lambda rows: run.read("places", rows=rows.tolist())
        )
        findings = engine.validate(data, known=known)
    incremental.LAST_SCOPE[("int_finding", incremental.slice_id({"partition_key": run.partition_key}))] = (
        None if again.all() else tuple(sorted(set(cohorts[again])))
    )
    findings = pd.concat(
        [
            run.read("read_findings").assign(source="read"),
            kept,
            findings.assign(source="rule", partition_key=run.partition_key),
        ],
        ignore_index=True,
    )
    # one finding per rule, place and value: a rule reached twice at the same cell is one problem
    findings = findings.drop_duplicates(subset=[c for c in FINDING_KEY if c in findings.columns])
    key = run.model.incremental if run.model else None  # only the workbooks whose findings changed are rewritten
    changes: dict = {}
    with transaction(run.con):
        replace_frame(
            run.con, "int_finding", findings, {"partition_key": run.partition_key}, atomic=False, key=key, changes=changes
        )
        _write_validation_state(run, engine.version, {sid: prints.get(sid) for sid in sorted(current)}, validated, validated_rows)
        # the workbooks whose findings this wrote (None: not known), for the models computed per workbook
        slice_key = incremental.slice_id({"partition_key": run.partition_key})
        incremental.wrote(run.con, "int_finding", slice_key, changes.get("groups") if key else None)
    return len(findings)


def _write_validation_state(run: ModelRun, version: str, new: dict, validated: dict, validated_rows: int) -> None:
    """The slice's validation_state rows: one per workbook (`new`: {submission_id: its cohort's
    fingerprint}) under the rules `version` (inside the caller's transaction). When the slice holds
    only rows under these rules, one per workbook (`validated`, read before: `validated_rows` rows),
    only the rows that differ are deleted and inserted (one workbook of a re-run, where comparing
    the slice's rows took 12 ms at 1,000 workbooks); otherwise the slice is replaced."""
    slice_ = {"partition_key": run.partition_key}
    (rows,) = run.con.execute(
        "select count(*) from validation_state where partition_key = $p", {"p": run.partition_key}
    ).fetchone()
    if not (rows == validated_rows == len(validated)):  # other rules' rows, or a workbook twice: replaced whole
        state = pd.DataFrame({"partition_key": run.partition_key, "submission_id": list(new), "rules_version": version})
        state["cohort_fingerprint"] = state["submission_id"].map(new)
        replace_frame(run.con, "validation_state", state, slice_, atomic=False)
        return
    missing = object()
    gone = [sid for sid, print_ in validated.items() if new.get(sid, missing) != print_]
    added = [sid for sid, print_ in new.items() if validated.get(sid, missing) != print_]
    if gone:
        run.con.execute(
            "delete from validation_state where partition_key = $p and list_contains($gone, submission_id)",
            {"p": run.partition_key, "gone": gone},
        )
    if added:
        run.con.execute(
            "insert into validation_state select $p, unnest($sids), $version, unnest($prints)",
            {"p": run.partition_key, "sids": added, "version": version, "prints": [new[sid] for sid in added]},
        )


def _cohort_fingerprints(engine, run: ModelRun, submissions: pd.DataFrame, cohorts: pd.Series, history: dict, collecting) -> dict:
    """{submission_id: the fingerprint of its cohort}: everything the cohort's findings are computed
    from. The cohort's workbooks (their raw_submission rows but the time they were last loaded;
    a workbook's submission_id is its content), its agencies' history (row count and hash sum per
    agency of the `history` input), the rules and lookups (`RuleEngine.version`), the catalog files (calendars,
    reporting units) and the collected period."""
    from pipelines.catalog.loading import fingerprint as catalog_files

    if submissions.empty:
        return {}
    common = repr((engine.version, catalog_files(Path(run.catalog.root)), collecting.code if collecting else None))
    # each workbook's row hashed by DuckDB where it is (a national quarter's 4,000 rows: 2 ms, where
    # pandas' hash of the frame took 15 ms), over the columns the frame has but loaded_at
    hashed = ", ".join('"' + c.replace('"', '""') + '"' for c in sorted(submissions.columns) if c != "loaded_at")
    by_id = dict(
        run.con.execute(
            f"select submission_id, hash({hashed}) from raw_submission where partition_key = $p", {"p": run.partition_key}
        ).fetchall()
    )
    hashes = submissions["submission_id"].map(by_id).to_numpy()
    agencies = submissions["declared_agency_code"].to_numpy()
    members: dict[str, list] = {}
    for cohort, row_hash, agency in zip(cohorts.to_numpy(), hashes, agencies, strict=True):
        members.setdefault(cohort, []).append((int(row_hash), history.get(agency) if isinstance(agency, str) else None))
    digests = {
        cohort: hashlib.sha256(repr((common, sorted(items, key=repr))).encode()).hexdigest()[:32]
        for cohort, items in members.items()
    }
    return dict(zip(submissions["submission_id"], cohorts.map(digests), strict=True))


def broken_error_rules(run: ModelRun) -> pd.DataFrame:
    """The in-force figures of the year that break an error rule (none may: rejected workbooks never
    reach int_element_value; the check is defence in depth).

    After a run whose write of int_element_value changed some agencies' rows (known in this
    process), only those agencies are checked, when the check last passed on the table exactly as
    it was before that write, under the same rules; otherwise (another process, a failed check,
    new rules, a whole rewrite) every agency. A pass is recorded for the table as it is now, a
    failure forgets the last pass."""
    from pipelines import incremental

    engine = rule_engine(run.catalog)
    slice_key = incremental.slice_id({"period_year": run.year})
    checked = f"int_element_value:{BROKEN_ERROR_RULES}"
    scope = incremental.groups_to_compute(run.con, checked, "int_element_value", slice_key, engine.version)
    incremental.LAST_SCOPE[(checked, slice_key)] = scope
    # the null agency is not one $agencies can name: every agency then
    every = scope is None or None in scope
    params = {"year": run.year, "every": every, "agencies": [a for a in scope or () if a is not None]}
    values_sql = statement_body(sql_text("quality/in_force_report_values"))
    broken = engine.broken_figures(run.con, values_sql, params, severity="error")
    if broken.empty:
        incremental.read(run.con, checked, "int_element_value", slice_key, engine.version)
        return pd.DataFrame(columns=["submission_id", "rule_id", "message_vi"])
    incremental.unread(run.con, checked, slice_key)  # the next check looks at every agency
    return broken[["submission_id", "rule_id", "message_vi"]]


BROKEN_ERROR_RULES = "accepted_figures_pass_error_rules"  # the check's name (sql/intermediate/int_element_value.sql)


EXPECTED_REPORT = "int_expected_report"
# what who must report, and by when, is worked out from: this module, the catalog's code and the periods'
_EXPECTED_CODE = ("steps.py", "periods.py", "catalog/*.py")


def expected_report_slice(run: ModelRun) -> int:
    """int_expected_report's slice (`expected_reports`), written group by group (agency_code).

    Its rows follow from the catalog files, the report window and the code only (not the time of
    the run, nor any workbook): when they are those the slice was last built from (their
    fingerprint is kept in incremental_state with the rows and their count), the rows are the same
    and are neither computed nor compared again (a re-run after one changed workbook: 40-90 ms less
    from 1,000 to 4,000 units). Returns the slice's rows."""
    from pipelines import incremental
    from pipelines.catalog.loading import fingerprint as catalog_files
    from pipelines.warehouse import transaction

    con = run.con
    slice_ = {"partition_key": run.partition_key}
    slice_key = incremental.slice_id(slice_)
    print_ = hashlib.sha256(
        repr((_expected_code(), catalog_files(Path(run.catalog.root)), run.partition_key)).encode()
    ).hexdigest()[:32]
    kept = incremental.kept_fingerprint(con, EXPECTED_REPORT, slice_key)
    if kept is not None and kept.startswith(f"{print_}:"):
        # the rows kept with it must still be there (the table exists: its DDL ran first)
        (rows,) = con.execute(
            f"select count(*) from {EXPECTED_REPORT} where partition_key = $p", {"p": run.partition_key}
        ).fetchone()
        if kept == f"{print_}:{rows}":
            return rows
    frame = expected_reports(run)
    changes: dict = {}
    with transaction(con):
        rows = replace_frame(con, EXPECTED_REPORT, frame, slice_, atomic=False, key="agency_code", changes=changes)
        incremental.wrote(con, EXPECTED_REPORT, slice_key, changes.get("groups"))
        incremental.keep_fingerprint(con, EXPECTED_REPORT, slice_key, f"{print_}:{rows}")
    return rows


@functools.cache
def _expected_code() -> str:
    here = Path(__file__).resolve().parent
    globbed = [path for pattern in _EXPECTED_CODE for path in sorted(here.glob(pattern))]
    return _code_digest([SQL_DIR / "intermediate" / f"{EXPECTED_REPORT}.sql", *globbed])


def _code_digest(paths) -> str:
    """The SHA-256 of these files' bytes, in this order: what rows were computed by."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def expected_reports(run: ModelRun) -> pd.DataFrame:
    """int_expected_report's rows: who must send the partition's report window, and by when."""
    period = partition_report(run.partition_key)
    units = run.catalog.expected_reporters(period)
    if units.empty:  # nobody expected (no calendar collects this window): no rows
        return pd.DataFrame()
    # the window and the due time depend on the unit's calendar only: worked out once per calendar
    # (a national catalog has 4,000 units and a calendar per province)
    windows = {cutoff: period.window(cutoff) for cutoff in set(units["cutoff_day"])}
    dues = {
        (day, zone): (period.due_at(day, zone), dt.date(period.year, period.last_month, day))
        for day, zone in set(zip(units["due_day"], units["timezone"], strict=True))
    }
    window = [windows[cutoff] for cutoff in units["cutoff_day"]]
    due = [dues[key] for key in zip(units["due_day"], units["timezone"], strict=True)]
    return pd.DataFrame(
        {
            "partition_key": run.partition_key,
            "agency_code": units["code"].to_numpy(),
            "period_code": period.code,
            "authority": units["reporting_authority"].to_numpy(),
            "admin_level": units["admin_level"].to_numpy(),
            "jurisdiction_code": units["jurisdiction_code"].to_numpy(),
            "window_start": [start for start, _ in window],
            "window_end": [end for _, end in window],
            "due_at": [at for at, _ in due],
            "due_date": [date for _, date in due],  # in the calendar's zone
        }
    )


def first_scorecard_year(catalog: Catalog, year: int) -> int:
    """The earliest year the scorecard of `year` can look at: the year before the earliest start,
    phase start, ramp base or baseline year of the targets in force in `year`. Reading only from
    there keeps a quarter's cost flat however long the history grows (10 years of a nation)."""
    targets = catalog.targets
    if targets.empty:
        return year - 1
    active = targets[(targets["phase_start_year"] <= year) & (targets["deadline_year"] >= year - 1)]
    # column by column: the targets' records (to_dict) took 7 ms of each re-run
    years = [year, *(int(v) for v in active["start_year"]), *(int(v) for v in active["phase_start_year"])]
    for column in ("ramp", "baseline"):
        for extra in active[column] if column in active.columns else ():
            years += [int(v) for v in _numbers_in(extra) if 1990 <= v <= 2100 and float(v).is_integer()]
    return min(years) - 1


def _numbers_in(value) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _numbers_in(v)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str) and value.isdigit():
        return [int(value)]
    return []


SCORECARD_GROUP = ("plan_id", "indicator_code")  # what the scorecard scores again or keeps: a plan's targets on one indicator


def scorecard(run: ModelRun) -> int:
    """fct_target_scorecard for the quarter's year (external indicators from fct_external_value), by
    plan and indicator.

    The rows of a plan's targets on one indicator depend only on those targets, the figures of
    that indicator (a share's or weighted mean's parts, a reduction's numerator element) at the
    plan's carriers (`plan_units`) and the recorded external values. So each (plan, indicator)
    group gets a fingerprint of what its rows are computed from (`_group_fingerprints`), kept with
    its rows as a SQL model's groups are (`group_state`, `pipelines.incremental.changed_groups`): a
    group with the fingerprint it was last scored from, and the rows it wrote then, keeps them, and
    only the other groups are scored, from their figures alone (one corrected figure re-scores the
    targets on the indicators it enters, not its plan's fifty). The first build of a year, or one
    after a write that kept no state, scores every group. Writes the rows and the fingerprints
    together; returns the year's rows."""
    from pipelines import incremental
    from pipelines.scorecard import plan_units, scorecard_reading
    from pipelines.warehouse import _where, transaction

    year, con, catalog = run.year, run.con, run.catalog
    span = {"first_year": first_scorecard_year(catalog, year), "year": year}
    external = run.read("external") if table_exists(con, "fct_external_value") else None
    units = plan_units(catalog)
    prints, pairs_of = _group_fingerprints(run, span, units, external)
    slice_ = {"period_year": year}
    slice_key = incremental.slice_id(slice_)
    where, where_params = _where(slice_)
    scope = incremental.changed_groups(con, "fct_target_scorecard", slice_key, prints, SCORECARD_GROUP, where, where_params)
    changed = sorted(set(prints) & set(scope or ()))  # the groups to score again (the others of scope leave)
    if scope is None:  # nothing to keep (a first build, no state, every group changed): the whole year
        frame = scorecard_reading(catalog, year, _figure_reader(run, span), span["first_year"], external=external)
    else:
        frame = pd.DataFrame(columns=["plan_id"])
        if changed:
            pairs = {pairs_of[group] for group in changed}
            chosen = sorted(set().union(*(units[plan] for plan, _ in pairs)))
            frame = scorecard_reading(
                catalog, year, _figure_reader(run, span, chosen), span["first_year"], external=external, groups=pairs
            )
    incremental.LAST_SCOPE[("fct_target_scorecard", slice_key)] = None if scope is None else tuple(changed)
    key = run.model.incremental if run.model else None  # within the rows replaced, only the org units that changed are written
    changes: dict = {}
    with transaction(con):
        if scope is None:
            replace_frame(con, "fct_target_scorecard", frame, slice_, atomic=False, key=key, changes=changes)
        elif scope:  # the groups scored again, and those no longer in the catalog, are replaced
            replace_frame(
                con,
                "fct_target_scorecard",
                frame,
                slice_ | {SCORECARD_GROUP: list(scope)},
                atomic=False,
                key=key,
                changes=changes,
            )
        else:  # no group changed: `changed_groups` found every group's kept fingerprint and row count as they
            # are, so there is nothing to write or to keep again (a re-run's usual case: 20-30 ms)
            changes["groups"] = []
        if scope != ():
            incremental.keep_fingerprints(con, "fct_target_scorecard", slice_key, prints, SCORECARD_GROUP, where, where_params)
        # the org units whose rows were rewritten (None: unknown), for the grain and reference checks (models._check_scope)
        incremental.wrote(con, "fct_target_scorecard", slice_key, changes.get("groups"))
    return int(con.execute("select count(*) from fct_target_scorecard where period_year = $year", {"year": year}).fetchone()[0])


def _figure_reader(run: ModelRun, span: dict, units: list[str] | None = None):
    """The scorecard's figures (its `parts` and `values` inputs over `span`, of `units` only when
    given) as `pipelines.scorecard.scorecard_reading` asks for them: of the years wanted per key,
    or of some (key, agency) pairs in the other years; filtered in DuckDB."""
    from pipelines.scorecard import KEY_COLUMN

    def read(name: str, wanted: dict[str, set[int]], pairs: pd.DataFrame | None) -> pd.DataFrame:
        key = KEY_COLUMN[name]
        keys = [(k, str(y)) for k in sorted(wanted) for y in sorted(wanted[k])]
        params: dict = dict(span) | {"wk": [k for k, _ in keys] or [""], "wy": [y for _, y in keys] or [""]}
        in_wanted = f"(select unnest($wk) as k, unnest($wy) as y) as n on t.{key} = n.k and substr(t.period_code, 1, 4) = n.y"
        sql = f"select t.* from ({run.input_sql(name)}\n) as t "
        if pairs is None:
            sql += f"semi join {in_wanted}"
        else:
            params |= {"pk": pairs["key"].tolist() or [""], "pa": pairs["agency_code"].tolist() or [""]}
            sql += f"semi join (select unnest($pk) as k, unnest($pa) as a) as m on t.{key} = m.k and t.agency_code = m.a "
            sql += f"anti join {in_wanted}"
        if units is not None:
            sql += " where list_contains($units, t.agency_code)"
            params["units"] = units
        return run.execute(sql, **params).df()

    return read


def _group_fingerprints(
    run: ModelRun, span: dict, units: dict[str, set[str]], external: pd.DataFrame | None
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """({group: the fingerprint of what its scorecard rows are computed from}, {group: (plan_id,
    indicator_code)}), a group being a plan's targets on one indicator (SCORECARD_GROUP, as
    `pipelines.warehouse.group_text` writes it): the figures of its indicator at the plan's
    carriers (row count and hash sum of the `parts` input's rows of the indicator, or of the
    `values` input's rows of a reduction's numerator element, from DuckDB), the recorded external
    values, the year and its span, the catalog files and the scorecard's code."""
    from pipelines.catalog.loading import fingerprint as catalog_files
    from pipelines.scorecard import figures_of
    from pipelines.warehouse import group_text

    catalog = run.catalog
    members = [(plan, agency) for plan, codes in sorted(units.items()) for agency in sorted(codes)]
    params = span | {"plans": [p for p, _ in members] or [""], "agencies": [a for _, a in members] or [""]}
    version, files = _scorecard_version(run), catalog_files(Path(catalog.root))
    sums = {name: _year_sums(run, name, span, params, repr((version, files))) for name in ("parts", "values")}
    outside = int(pd.util.hash_pandas_object(external, index=False).sum()) if external is not None and len(external) else 0
    common = repr((version, files, span, outside))
    prints, pairs = {}, {}
    for plan, indicator_code in sorted({(t.plan_id, t.indicator) for t in catalog.records.targets}):
        on = figures_of(catalog.indicators_by_code[indicator_code])
        # an external indicator (None): its recorded values, in `common`
        figures = None if on is None else sums[on[0]].get((plan, on[1]))
        group = group_text((plan, indicator_code))
        prints[group] = hashlib.sha256(repr((common, plan, indicator_code, figures)).encode()).hexdigest()[:32]
        pairs[group] = (plan, indicator_code)
    return prints, pairs


SUMS_SOURCE = {"parts": "fct_indicator_value", "values": "int_element_value"}  # the table each input reads, by year


def _year_sums(run: ModelRun, name: str, span: dict, params: dict, context: str) -> dict[tuple[str, str], tuple[int, int]]:
    """{(plan_id, key): (rows, hash sum)} of the input `name`'s rows over the span at the plans'
    carriers (`params`: plans and agencies, side by side), as the sums of its years kept in
    `scorecard_sums`: a year is summed again only when the write token of the input table's slice
    of that year (`pipelines.incremental`; every write that changes a slice's rows gives it a new
    one), the `context` (the scorecard's code, the catalog's files) or the input's SQL is not what
    its sums were kept under. The same totals as summing the span at once (a hash sum is a sum), in
    a cost that follows the years changed (a new quarter: its own) rather than the history's."""
    from pipelines import incremental
    from pipelines.scorecard import KEY_COLUMN
    from pipelines.warehouse import transaction

    con, key = run.con, KEY_COLUMN[name]
    years = list(range(span["first_year"], span["year"] + 1))
    if not years:
        return {}
    slices = {y: incremental.slice_id({"period_year": y}) for y in years}
    written = incremental.state(con, (SUMS_SOURCE[name],), tuple(slices.values()))
    sql = run.input_sql(name)
    tokens = {
        y: hashlib.sha256(repr((context, sql, (written.get((SUMS_SOURCE[name], s)) or (None,))[0])).encode()).hexdigest()[:32]
        for y, s in slices.items()
    }
    state = {"i": name, "y": years}
    kept = dict(
        con.execute("select year, token from scorecard_sums_state where input = $i and list_contains($y, year)", state).fetchall()
    )
    stale = [y for y in years if kept.get(y) != tokens[y]]
    if stale:
        sums = run.execute(
            f"select u.plan_id, t.{key}, cast(substr(t.period_code, 1, 4) as integer) as y, count(*), sum(hash(t)::hugeint)"
            f" from ({sql}\n) as t"
            " join (select unnest($plans) as plan_id, unnest($agencies) as agency_code) as u on t.agency_code = u.agency_code"
            " where cast(substr(t.period_code, 1, 4) as integer) in (select unnest($stale)) group by all",
            **(params | {"first_year": stale[0], "year": stale[-1], "stale": stale}),
        ).fetchall()
        with transaction(con):
            again = {"i": name, "y": stale}
            con.execute("delete from scorecard_sums where input = $i and list_contains($y, year)", again)
            con.execute("delete from scorecard_sums_state where input = $i and list_contains($y, year)", again)
            con.execute(
                "insert into scorecard_sums_state select $i, unnest($y), unnest($t)", again | {"t": [tokens[y] for y in stale]}
            )
            if sums:
                con.execute(
                    "insert into scorecard_sums select $i, unnest($y), unnest($p), unnest($k), unnest($n), unnest(cast($h as hugeint[]))",
                    {"i": name, "y": [r[2] for r in sums], "p": [r[0] for r in sums], "k": [r[1] for r in sums],
                     "n": [r[3] for r in sums], "h": [str(r[4]) for r in sums]},
                )  # fmt: skip
    totals = con.execute(
        "select plan_id, key, sum(n), sum(h) from scorecard_sums where input = $i and list_contains($y, year) group by all", state
    ).fetchall()
    return {(plan, k): (int(n), int(h)) for plan, k, n, h in totals}


def _scorecard_version(run: ModelRun) -> str:
    """The scorecard's code: the model file and the modules that compute its rows."""
    here = Path(__file__).resolve().parent
    return _code_digest(
        [here / "scorecard.py", here / "targets.py", here / "steps.py", *([run.model.path] if run.model else [])]
    )[:16]


def external_values(run: ModelRun) -> dict[str, pd.DataFrame]:
    """raw_external_value, fct_external_value and fct_external_finding from every form under
    <raw>/external (whole tables: the input is small)."""
    from pipelines.external import external_tables

    tables = external_tables(run.con, run.catalog, run.raw_dir, run.now, run.limits)
    findings = tables["fct_external_finding"]
    if not findings.empty:  # one finding per rule and place (the table's grain)
        tables["fct_external_finding"] = findings.drop_duplicates(["content_hash", "row_number", "rule_id", "cell"])
    return tables


def plan_tasks(run: ModelRun) -> pd.DataFrame:
    """fct_plan_task_status: the in-force workbooks' task rows with due dates, status, overdue flags."""
    rows = run.read("tasks")
    out = []
    for r in rows.to_dict("records"):
        period = Period(int(r["period_code"][:4]), r["period_code"][5:])
        as_of = dt.date(
            period.year,
            period.last_month,
            calendar.monthrange(period.year, period.last_month)[1],
        )
        due = parse_due(r["due_text"], period.year, period.quarter)
        status = parse_status(r["status_text"])
        done = parse_date(r["done_text"]) if r["done_text"] else None
        flags = assess_task(due, status, done, as_of)
        out.append(
            {
                "partition_key": run.partition_key,
                "agency_code": r["agency_code"],
                "period_code": r["period_code"],
                "submission_id": r["submission_id"],
                "task_code": r["task_code"],
                "task": r["task"],
                "due_text": r["due_text"],
                "due_kind": due.kind,
                "due_date": due.due_date,
                "is_due_parsed": due.kind not in ("unparsed", "empty"),
                "status_text": r["status_text"],
                "status": status,
                "done_date": done,
                "as_of_date": as_of,
                "sheet": r["sheet"],
                "row_number": r["row_number"],
            }
            | flags
        )
    return pd.DataFrame(out)


QUARTERLY_LAYERS = ("raw", "staging", "intermediate", "curated")


def build_models(
    con, catalog, partition_key: str | None, *names: str, now: dt.datetime | None = None, root=SQL_DIR, **options
) -> dict[str, int]:
    """Build the named models for one partition, in dependency order, without Dagster."""
    return build_all(names, ModelRun(con, partition_key, now, lambda: catalog, **options), root)


def build_quarter(con, catalog, partition_key: str, now: dt.datetime, raw_dir=None, root=SQL_DIR, **options) -> dict[str, int]:
    """Every quarterly model for one partition, in dependency order, without Dagster. Without
    `raw_dir` the raw and external tables are left as they are (a test fills them itself)."""
    readers = ("pipelines.steps:read_workbooks", EXTERNAL_VALUES)
    names = [
        m.name
        for m in all_models(root).values()
        if m.layer in QUARTERLY_LAYERS and (raw_dir is not None or m.python not in readers)
    ]
    return build_models(con, catalog, partition_key, *names, now=now, raw_dir=raw_dir, root=root, **options)
