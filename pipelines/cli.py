"""Command line: run the pipeline in-process on a raw folder and print where the results are.

python -m pipelines demo                 # the shipped demo data, then a summary
python -m pipelines run [--quarter 2024-Q2 ...] [--all]   # or "Quý II/2024"; default: the quarters whose run could differ from their last
python -m pipelines summary
python -m pipelines report --period 2024-Q4 --out reports/ [--jurisdiction TD]
python -m pipelines describe [--json]                 # the published tables, columns, types and comments
python -m pipelines export --to postgresql://user@host/db   # copy them to PostgreSQL
python -m pipelines template --agency TD-XA-LIEUTU --period "Quý I/2025" --out form.xlsx
python -m pipelines serve                # a warm worker: later commands skip the libraries' start-up
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.errors import (
    DAGSTER_INTERRUPTION,
    INTERRUPTED,
    debug_on,
    never_lose_an_interrupt,
    quiet_interrupts_in_library_logs,
)
from pipelines.paths import catalog_dir_of

REPO_ROOT = Path(__file__).resolve().parent.parent
SUMMARY_INDICATORS = {
    "on_time_rate": "Tỷ lệ hồ sơ đúng hạn (on-time rate)",
    "online_payment_rate": "Tỷ lệ thanh toán trực tuyến (online-payment rate)",
    "result_digitization": "Tỷ lệ số hóa kết quả (digitization %)",
}


class CliError(Exception):
    """A problem the user can fix: printed as a message, exit code 2, no traceback."""


def _prepare_environment() -> None:
    """Local embedded defaults: DAGSTER_HOME at the repository root (dagster.yaml there); a
    DAGSTER_HOME given relative is taken from where the command was started (Dagster wants it absolute)."""
    home = os.environ.get("DAGSTER_HOME") or str(REPO_ROOT)
    os.environ["DAGSTER_HOME"] = os.path.abspath(os.path.expanduser(home))
    os.chdir(os.environ.get("CCHC_WORKDIR", str(REPO_ROOT)))


def _dagster_home() -> None:
    """DAGSTER_HOME must be a folder that exists: a clear message, not Dagster's error."""
    from pipelines.errors import ConfigError

    home = os.environ["DAGSTER_HOME"]
    if not os.path.isdir(home):
        raise ConfigError(
            f"DAGSTER_HOME={home} không phải thư mục có sẵn: hãy tạo thư mục đó (chép dagster.yaml của kho mã vào để dùng"
            f" cấu hình kèm theo) hoặc bỏ biến này để dùng thư mục gốc của kho mã / DAGSTER_HOME={home} is not an existing"
            " folder: create it (with a copy of the repository's dagster.yaml for the shipped storage) or unset it to use"
            " the repository root"
        )


def partitions_with_files(raw_dir: Path, cache_dir: Path | None = None, limits=None) -> list[str]:
    """The quarters that have workbooks (through the folder index and the parse cache, so the
    quarterly runs that follow read nothing twice)."""
    from pipelines.ingest import UNASSIGNED, index_entries, index_folder

    if cache_dir is None:
        keys = set(index_folder(raw_dir, None, limits)[0].values())
    else:
        keys = index_entries(raw_dir, cache_dir, limits).partitions()
    return sorted(keys - {UNASSIGNED})


def resolve_quarters(texts: list[str] | None) -> list[str]:
    """CLI quarter arguments ("2024-Q2", "Quý II/2024", "6 tháng đầu năm 2024", "2024-04-01") -> keys."""
    from pipelines.partitions import QUARTER_KEYS
    from pipelines.periods import PeriodError, parse_quarter

    keys = []
    for text in texts or []:
        try:
            key = parse_quarter(text)
        except PeriodError as exc:
            raise CliError(str(exc)) from None
        if key not in QUARTER_KEYS:
            first, last = min(QUARTER_KEYS), max(QUARTER_KEYS)
            raise CliError(
                f"Quý {key} nằm ngoài khoảng theo dõi {first} … {last} / quarter {key} is outside the tracked range {first} … {last}"
            )
        if key not in keys:
            keys.append(key)
    return sorted(keys)


INTERRUPTIONS = (DAGSTER_INTERRUPTION, "KeyboardInterrupt")


def _interrupted(result) -> bool:
    """Whether a failed run failed because it was interrupted: Dagster turns a Ctrl-C (or a SIGTERM)
    inside a step into a failure of that step (DAGSTER_INTERRUPTION), which may be the cause or the
    context of what the step raised (a DuckDB statement the interruption stopped raises "Query
    interrupted")."""
    return any(
        _in_chain(getattr(event.event_specific_data, "error", None), lambda e: e.cls_name, lambda e: (e.cause, e.context))
        for event in result.all_events
    )


def _raised_by_interruption(exc: BaseException) -> bool:
    """Whether an exception is an interruption (`_interrupted`), or was raised by one: the step's
    error with --debug, whose cause or context is the interruption."""
    return _in_chain(exc, lambda e: type(e).__name__, lambda e: (e.__cause__, e.__context__))


def _in_chain(first, name_of: Callable, links_of: Callable) -> bool:
    """Whether an error, or one of those it links to (its cause and context, and theirs), is an
    interruption (INTERRUPTIONS, by class name): a raised exception or Dagster's record of one."""
    seen: set[int] = set()
    errors = [first]
    while errors:
        error = errors.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if name_of(error) in INTERRUPTIONS:
            return True
        errors += links_of(error)
    return False


def _failure_paragraph(result, what: str) -> str:
    """One paragraph for a failed run: which step, what went wrong, what to do."""
    from dagster import DagsterEventType

    failed_steps, reasons = [], []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            failed_steps.append(event.step_key)
            error = event.step_failure_data.error if event.step_failure_data else None
            if error is not None:
                cause = error
                while cause.cause is not None:
                    cause = cause.cause
                reasons.append(cause.message.strip().splitlines()[0] if cause.message.strip() else error.message.strip())
    checks = []
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity.value == "ERROR":
            rows = evaluation.metadata.get("offending_rows")
            count = evaluation.metadata.get("count")
            checks.append(
                f"kiểm tra/check {evaluation.asset_key.to_user_string()}.{evaluation.check_name}"
                f" ({count.value if count else '?'} dòng/rows)\n{rows.value if rows else ''}"
            )
    lines = [f"LỖI / FAILED: {what}."]
    if failed_steps:
        lines.append(f"Bước lỗi / failed step: {', '.join(failed_steps)}.")
    lines += [f"Nguyên nhân / cause: {r}" for r in reasons[:3]]
    lines += checks
    lines.append(
        "Số liệu đã công bố trước đó vẫn giữ nguyên; chưa có gì được công bố từ lần chạy này. Sửa nguyên nhân rồi chạy lại"
        " (chạy lại luôn an toàn). Thêm --debug để xem chi tiết kỹ thuật. / The previously published figures are unchanged;"
        " nothing from this run was published. Fix the cause and run again (re-running is always safe); add --debug for the"
        " technical details."
    )
    return "\n".join(lines)


def _catalog_changed(warehouse, catalog_dir: Path, fingerprint: str) -> bool:
    """Whether the dimensions must be republished: the catalog files (their `catalog_fingerprint`)
    differ from the last publish of the dimensions (or the working database is new). Inside
    `warehouse.kept_open()`."""
    import duckdb

    if not warehouse.work_path.exists():
        return True
    try:  # the command's connection (inside `kept_open`), which its runs then use
        con = warehouse.kept_connection()
        row = con.execute(
            "select fingerprint from catalog_state where catalog_dir = $d", {"d": str(catalog_dir.resolve())}
        ).fetchone()
        has_dims = con.execute("select count(*) from duckdb_tables() where table_name = 'dim_agency'").fetchone()[0]
    except duckdb.Error:
        return True
    return not has_dims or row is None or row[0] != fingerprint


def _remember_catalog(warehouse, catalog_dir: Path, fingerprint: str) -> None:
    with warehouse.warehouse().connect() as con:
        con.execute(
            "insert or replace into catalog_state values ($d, $f, now())", {"d": str(catalog_dir.resolve()), "f": fingerprint}
        )


def _quarters_due(warehouse, resources, with_files: list[str], catalog_print: str, external_print: str, now):
    """(each quarter's inputs print, the quarters of `with_files` a plain run as of `now` runs:
    pipelines/quarters_due.py). Inside `warehouse.kept_open()`; a working database without the state
    (new, or older): every quarter."""
    import duckdb

    from pipelines import quarters_due
    from pipelines.ingest import index_entries, load_receipt_register
    from pipelines.partitions import QUARTER_KEYS
    from pipelines.periods import LOCAL_TZ

    raw = resources["raw"]
    common = "\n".join(
        (
            catalog_print,
            quarters_due.code_print(),
            quarters_due.settings_print(),
            external_print,
            repr(raw.limits()),
            ",".join(sorted(QUARTER_KEYS)),
        )
    )
    entries = index_entries(raw.path, warehouse.parse_cache_dir, raw.limits())
    # the register read as the quarters' runs read it (once per command, and ahead by a warm worker)
    prints = quarters_due.quarter_prints(entries, with_files, common, load_receipt_register(raw.register_path))
    try:
        due = quarters_due.quarters_to_run(warehouse.kept_connection(), prints, now, now.astimezone(LOCAL_TZ).date())
    except duckdb.Error:
        due = list(with_files)
    return prints, due


def _external_tokens(con, names: set[str]) -> str | None:
    """The external-values tables' write tokens (incremental_state), which change with every write;
    None while a table has none."""
    rows = dict(
        con.execute(
            "select table_name, token from incremental_state where list_contains($t, table_name) and slice = 'table'",
            {"t": sorted(names)},
        ).fetchall()
    )
    if any(rows.get(name) is None for name in names):
        return None
    return ",".join(f"{name}={rows[name]}" for name in sorted(names))


def _external_kept(warehouse, raw_dir: Path, fingerprint: str, names: set[str]) -> bool:
    """Whether the external-values tables can be left out of the run: they were built by a command
    from the same forms (`pipelines.external.folder_fingerprint`) and nothing has written them since
    (their tokens). Inside `warehouse.kept_open()`; the caller also rebuilds them when the catalog
    changed (their checks and rows read it)."""
    import duckdb

    if not fingerprint:
        return False
    try:
        con = warehouse.kept_connection()
        row = con.execute(
            "select fingerprint, tokens from external_state where raw_dir = $d", {"d": str(raw_dir.resolve())}
        ).fetchone()
        return row is not None and row[0] == fingerprint and row[1] == _external_tokens(con, names)
    except duckdb.Error:  # a working database from before external_state: built as always
        return False


def _remember_external(warehouse, raw_dir: Path, fingerprint: str, names: set[str]) -> None:
    """After a run that built the external-values tables from these forms."""
    if not fingerprint:
        return
    with warehouse.warehouse().connect() as con:
        tokens = _external_tokens(con, names)
        if tokens is not None:
            con.execute(
                "insert or replace into external_state values ($d, $f, $t, now())",
                {"d": str(raw_dir.resolve()), "f": fingerprint, "t": tokens},
            )


# Work that can wait until the command has answered: closing (so checkpointing) the working
# database after a run, 0.1-0.15 s. `run()` does it before it returns, unless the process answers
# first (`answer_first`): a command forked by the warm worker tells its caller the exit code, then
# calls `finish()` (pipelines.worker). What the run wrote is committed before the answer either way.
_AFTER_ANSWER: list = []
_answer_first = False


def answer_first() -> None:
    """Leave the work that can wait (`after_answer`) to `finish()`, called once the command has answered."""
    global _answer_first
    _answer_first = True


def after_answer(callback) -> None:
    _AFTER_ANSWER.append(callback)


def work_after_answer() -> int:
    """How many pieces of work wait for `finish()`."""
    return len(_AFTER_ANSWER)


def finish() -> None:
    """Do the work left for after the answer, in the order it was left."""
    while _AFTER_ANSWER:
        _AFTER_ANSWER.pop(0)()


def run(partitions: list[str] | None = None, quiet: bool = False, debug: bool = False, run_all: bool = False) -> list[str]:
    """Refresh the dimensions, run the quarterly job for each partition in order (into the working
    database), then publish the analysts' database once, atomically. Without partitions: the
    quarters with workbooks whose run could differ from their last one (pipelines/quarters_due.py),
    or every quarter with workbooks (`run_all`). Returns the quarters with workbooks (or those given)."""
    from dagster import DagsterInstance

    from pipelines.definitions import defs
    from pipelines.ingest import one_look_per_command
    from pipelines.models import command_groups

    _dagster_home()
    dimension_models, external_models = command_groups()
    # The libraries, the definitions and the models are loaded for good: out of the cyclic garbage
    # collector's sight, its one full collection during a run no longer walks them (0.1-0.15 s of
    # a province's re-run; docs/performance.md). What the run allocates is collected as usual.
    gc.freeze()

    with contextlib.ExitStack() as held:
        opening = _open_working_database_early(held, defs.resources["warehouse"])
        # disposed when done (its storage's connections closed: 25 ms, the last close of a SQLite
        # file checkpoints its write-ahead log), after the answer when the command answers first
        instance = held.enter_context(DagsterInstance.get())
        with one_look_per_command():  # the raw folder looked at once, for the list of quarters and their runs
            partitions = _run_in(instance, defs, partitions, quiet, debug, dimension_models, external_models, opening, run_all)
        if _answer_first:
            after_answer(held.pop_all().close)
        return partitions


def _open_working_database_early(held: contextlib.ExitStack, warehouse):
    """Start opening the working database in a thread of its own while the command gets its Dagster
    instance and looks at the raw folder: DuckDB lets go of the interpreter's lock as it reads the
    file (an open with the schema's check takes 30-60 ms, about as long as each of those; docs/
    performance.md, thirty-first round). Only when the run lock is free now: it is taken here (and
    held, within `held`, for the command, as `_run_in` takes it), so no other process can be
    writing the file. Returns the thread (None: the lock is busy, and `_run_in` waits for it with its
    message). A failed open is left to the command, which opens the file again where it always did
    and reports what stops it."""
    import threading

    from pipelines.locking import WarehouseBusy

    try:
        held.enter_context(warehouse.run_lock().acquire(0, label="python -m pipelines run"))
    except WarehouseBusy:
        return None
    held.enter_context(warehouse.kept_open())

    def open_quietly() -> None:
        with contextlib.suppress(Exception):
            warehouse.kept_connection()

    thread = threading.Thread(target=open_quietly, name="cchc-open-work", daemon=True)
    thread.start()
    held.callback(thread.join)  # before the kept connection is closed, whatever ends the command
    return thread


def _run_in(
    instance,
    defs,
    partitions: list[str] | None,
    quiet: bool,
    debug: bool,
    dimension_models: set[str],
    external: set[str],
    opening=None,
    run_all: bool = False,
) -> list[str]:
    """run() on an open Dagster instance (`opening`: the thread opening the working database, if
    `_open_working_database_early` started one)."""
    from pipelines.external import folder_fingerprint
    from pipelines.partitions import QUARTER_KEYS
    from pipelines.periods import partition_label
    from pipelines.runs import reap_dead_runs, worker_tags
    from pipelines.sensors import catalog_fingerprint

    reaped = reap_dead_runs(instance)
    if reaped and not quiet:
        print(f"  (đánh dấu thất bại các lần chạy đã chết / marked failed the dead runs: {', '.join(reaped)})")
    resources = defs.resources
    raw_dir = resources["raw"].path
    if not raw_dir.is_dir():
        raise CliError(
            f"Không tìm thấy thư mục nhận báo cáo {raw_dir.resolve()} (CCHC_RAW_DIR) / the raw folder {raw_dir.resolve()}"
            " does not exist (CCHC_RAW_DIR): create it or point CCHC_RAW_DIR at the folder where workbooks land"
        )
    register = resources["raw"].receipts_register
    if register and not Path(register).exists():  # named, but not there: say so, the run goes on
        print(
            f"  (CCHC_RECEIPTS_REGISTER={register} không tồn tại: thời điểm nhận là lúc hệ thống thấy tệp lần đầu /"
            f" does not exist: received times are when the pipeline first saw each file)",
            file=sys.stderr,
        )
    warehouse = resources["warehouse"]
    plain = not partitions and not run_all  # which quarters: those whose run could differ from their last (quarters_due)
    partitions = partitions or [
        k for k in partitions_with_files(raw_dir, warehouse.parse_cache_dir, resources["raw"].limits()) if k in QUARTER_KEYS
    ]
    if not partitions:
        print(
            f"Không có tệp .xlsx nào trong {raw_dir} / no workbook under {raw_dir}",
            file=sys.stderr,
        )
        return []
    log_level = "DEBUG" if debug else "WARNING"
    quiet_logs = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    tags = worker_tags() | {"cchc/trigger": "cli"}

    def execute(
        job_name: str, what: str, partition_key: str | None = None, extra_tags: dict | None = None, without: set | None = None
    ):
        from pipelines.definitions import command_selection, execute_in_process

        started = time.perf_counter()
        try:
            result = execute_in_process(
                job_name,
                instance=instance,
                run_config=quiet_logs,
                partition_key=partition_key,
                tags=tags | (extra_tags or {}),
                raise_on_error=debug,
                # the job's assets except some groups (the dimensions when the catalog is unchanged, ...)
                asset_selection=command_selection(job_name, without or frozenset()),
            )
        except BaseException as exc:  # with --debug, Dagster raises what stopped a step
            if _raised_by_interruption(exc):
                raise KeyboardInterrupt from exc  # a Ctrl-C inside a step: stopped, not failed
            raise
        finally:
            from assets.factory import stop_builds

            stop_builds()  # the builds of a step an interruption left suspended (none after a run that ended well)
        if not result.success:
            if _interrupted(result):  # a Ctrl-C (or SIGTERM) inside a step: stopped, not failed
                raise KeyboardInterrupt
            raise CliError(_failure_paragraph(result, what))
        return time.perf_counter() - started

    # One writer: hold the working database for the whole sequence (catalog, quarters, publish),
    # so no other run slips in between them; and one connection to it (kept_open), which the
    # catalog's check, the runs and the record of the catalog share, closed (so checkpointed) once.
    with contextlib.ExitStack() as held:
        held.enter_context(warehouse.run_lock().acquire(warehouse.lock_timeout_seconds, label="python -m pipelines run"))
        held.enter_context(warehouse.kept_open())
        if opening is not None:
            opening.join()  # the kept connection is the thread's from here on (or opened below, if it failed)
        catalog_dir = Path(resources["catalog"].catalog_dir)
        catalog_print = catalog_fingerprint(catalog_dir)
        catalog_changed = _catalog_changed(warehouse, catalog_dir, catalog_print)
        # the external-values tables are built in a quarter's run, from the forms under
        # <raw>/external: left out while those forms, the catalog and the tables are unchanged (3
        # assets, 5 checks: 0.1-0.2 s of a re-run; docs/performance.md)
        external_print = folder_fingerprint(raw_dir, resources["raw"].limits())
        external_kept = not catalog_changed and _external_kept(warehouse, raw_dir, external_print, external)
        kept = (set() if catalog_changed else dimension_models) | (external if external_kept else set())
        with_files, prints = partitions, {}
        now = resources["clock"].now()
        if plain:
            prints, partitions = _quarters_due(warehouse, resources, partitions, catalog_print, external_print, now)
            left = len(with_files) - len(partitions)
            if left and not quiet:
                print(
                    f"  {left} quý không thay đổi từ lần chạy trước, để nguyên (chạy lại tất cả: --all) / {left} quarter(s)"
                    " unchanged since their last run, left as they are (to run every quarter: --all)"
                )

        def remember(key: str) -> None:  # a plain run's quarter ran well: from what, as of when
            if key in prints:
                from pipelines import quarters_due

                with warehouse.warehouse().connect() as con:
                    quarters_due.remember(con, key, prints[key], now)

        published = {"cchc/partitions": ",".join(partitions)}
        if not partitions:  # every quarter as its last run left it: publish what is pending, if anything
            if catalog_changed:  # (the catalog is in every quarter's print: only when the dimensions are missing)
                execute("cchc_catalog", "làm mới danh mục / refreshing the catalog dimensions")
                _remember_catalog(warehouse, catalog_dir, catalog_print)
            seconds = execute("cchc_publish", "công bố cơ sở dữ liệu / publishing the database", extra_tags=published)
            if not quiet:
                print(f"  công bố / published ({seconds:.1f} s)")
        elif len(partitions) == 1:  # one quarter: dimensions (if the catalog changed), quarter and publish in one run
            (key,) = partitions
            seconds = execute(
                "cchc_quarter_and_publish",
                f"quý / quarter {partition_label(key)} và công bố / and publish",
                key,
                published,
                without=kept or None,
            )
            if catalog_changed:
                _remember_catalog(warehouse, catalog_dir, catalog_print)
            if not external_kept:
                _remember_external(warehouse, raw_dir, external_print, external)
            remember(key)
            if not quiet:
                print(f"  {partition_label(key)}: ok, đã công bố / published ({seconds:.1f} s)")
        else:  # several runs: the catalog (if changed), each quarter, the publish
            if catalog_changed:
                execute("cchc_catalog", "làm mới danh mục / refreshing the catalog dimensions")
                _remember_catalog(warehouse, catalog_dir, catalog_print)
            for i, key in enumerate(partitions):  # the external-values tables in the first quarter's run, if at all
                without = external if external_kept or i else None
                seconds = execute("cchc_quarterly", f"quý / quarter {partition_label(key)}", key, without=without)
                remember(key)
                if not quiet:
                    print(f"  {partition_label(key)}: ok ({seconds:.1f} s)")
            if not external_kept:
                _remember_external(warehouse, raw_dir, external_print, external)
            seconds = execute("cchc_publish", "công bố cơ sở dữ liệu / publishing the database", extra_tags=published)
            if not quiet:
                print(f"  công bố / published ({seconds:.1f} s)")
        if _answer_first:  # published: the caller may have its answer before the connection's close
            closing = held.pop_all()
            _WARM[:] = [warehouse.kept_connection()]  # the summary reads the published tables there (`summary`)

            def close() -> None:
                _WARM.clear()
                closing.close()

            after_answer(close)
    _say_register_problems(resources["raw"].register_path)
    return with_files


def _say_register_problems(register) -> None:
    """The rows of the receipts register the runs skipped (a time that is not one), on stderr."""
    from pipelines.ingest import receipt_register_problems

    problems = receipt_register_problems(register)
    if problems:
        print(
            f"  Sổ nhận báo cáo có {len(problems)} dòng không đọc được thời điểm nhận / the receipts register has"
            f" {len(problems)} row(s) whose received time could not be read:",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"    - {problem}", file=sys.stderr)


# The working database's connection of the run that just published, while it stays open for the
# answer (a command that answers first): its curated tables are the published file's, rows for
# rows, and are in its memory, where the published file would be opened and read cold (some 0.1 s
# of a re-run at 1,000 workbooks: docs/performance.md).
_WARM: list = []


def summary() -> str:
    """A short text summary of the latest quarter in the warehouse."""
    import duckdb

    from pipelines.warehouse import Warehouse

    db = _published_database()
    lines = [f"Kết quả / results: {db}"]
    if _WARM:  # the run just published these tables: read there (the views are the published file's own)
        from pipelines.model_docs import view_sql
        from pipelines.warehouse import statement_body

        _summarise(_WARM[0], lines, coverage_from=f"({statement_body(view_sql('v_target_coverage'))})")
        lines.append(f"Mở bằng / open with: {_duckdb_cli()} -readonly {db}   (docs/queries.md has example queries)")
        return "\n".join(lines)
    try:
        with Warehouse(db).connect(read_only=True) as con:
            _summarise(con, lines)
    except duckdb.IOException as exc:
        raise CliError(
            f"Không mở được {db} để đọc: có chương trình đang mở tệp ở chế độ ghi (hãy mở với -readonly) / cannot open {db}"
            f" for reading: another program holds it read-write (open it read-only): {exc}"
        ) from None
    except duckdb.CatalogException as exc:  # CCHC_DATABASE names another DuckDB file
        raise CliError(
            f"Tệp {db} không phải cơ sở dữ liệu do pipeline công bố ({str(exc).splitlines()[0]}): kiểm tra CCHC_DATABASE hoặc"
            f" chạy `python -m pipelines run` / {db} is not a database this pipeline published: check CCHC_DATABASE, or run"
            " the pipeline first"
        ) from None
    lines.append(f"Mở bằng / open with: {_duckdb_cli()} -readonly {db}   (docs/queries.md has example queries)")
    return "\n".join(lines)


def _database_setting() -> Path:
    """CCHC_DATABASE as the warehouse resource reads it (pipelines.resources.build_resources), without
    loading the Dagster definitions and the catalog they need (0.9 s for a national catalog)."""
    from pipelines.paths import DEFAULT_DATABASE

    return Path(os.environ.get("CCHC_DATABASE", DEFAULT_DATABASE))


def _published_database() -> Path:
    """The published database the settings name; a message when there is none yet."""
    db = _database_setting().resolve()
    if not db.exists():
        raise CliError(
            f"Chưa có cơ sở dữ liệu {db}: hãy chạy `python -m pipelines run` / no database at {db} yet: run the pipeline first"
        )
    return db


def _duckdb_cli() -> str:
    """The DuckDB command line installed with the project (pip package duckdb-cli), as a runnable path."""
    candidate = Path(sys.executable).parent / "duckdb"
    return str(candidate) if candidate.exists() else "duckdb"


_LATEST_QUARTERS = (  # each jurisdiction's latest quarter with an indicator value
    "select org_unit_code, max(period_code) as period_code from fct_indicator_value "
    "where scope = 'jurisdiction' and period_code similar to '[0-9]{4}-Q[1-4]' and value is not null group by 1"
)


def _summarise(con, lines: list[str], coverage_from: str = "v_target_coverage") -> None:
    """The latest quarter of each jurisdiction: headline indicators, reporting, alerts, targets not met.
    `coverage_from`: the relation of v_target_coverage's rows (its select, where the view is not there)."""
    from pipelines.periods import period_sort_key

    latest = con.execute(_LATEST_QUARTERS + " order by 1").fetchall()
    if not latest:
        lines.append("(chưa có số liệu / no indicator values yet)")
        return
    lines.append("Quý gần nhất theo địa bàn / latest quarter per jurisdiction: " + ", ".join(f"{u} {p}" for u, p in latest))
    rows = con.execute(  # the latest quarters' rows only: the table holds every year since the first
        "select indicator_code, org_unit_code, admin_level, value, period_code from fct_indicator_value "
        "semi join (select unnest($units) as org_unit_code, unnest($periods) as period_code) using (org_unit_code, period_code) "
        "where scope in ('level', 'jurisdiction') and list_contains($codes, indicator_code) "
        "order by indicator_code, org_unit_code, case admin_level when 'all' then 9 else 0 end, admin_level",
        {"codes": list(SUMMARY_INDICATORS), "units": [u for u, _ in latest], "periods": [p for _, p in latest]},
    ).fetchall()
    for code, title in SUMMARY_INDICATORS.items():
        lines.append(f"  {title}:")
        for unit, period in latest:
            parts = [
                f"{lvl} {val:.1f}%" for c, u, lvl, val, p in rows if c == code and u == unit and p == period and val is not None
            ]
            if parts:
                lines.append(f"    {unit} {period}: " + "; ".join(parts))
    rates = con.execute(
        "select authority, period_code, reporting_rate, on_time_rate, missing_reports, late_reports from fct_reporting_rate "
        "where admin_level = 'all'"
    ).fetchall()
    last_window: dict[str, tuple] = {}
    for row in sorted(rates, key=lambda r: (r[0], period_sort_key(r[1]))):
        last_window[row[0]] = row
    lines.append("Nộp báo cáo, kỳ gần nhất / reporting, latest window (rate %, on time %, missing, late):")
    lines += [f"  {a} {p}: {r}% | {o}% | {m} | {late}" for a, p, r, o, m, late in last_window.values()]
    alerts = con.execute("select alert_type, count(*) from fct_alert group by 1 order by 1").fetchall()
    lines.append("Cảnh báo mở / open alerts: " + ", ".join(f"{t} {n}" for t, n in alerts))
    # the targets not met in the latest quarter of the unit's jurisdiction (or of the unit itself),
    # agencies' own rows after the aggregates, the largest gaps first; the count and the first 8
    # (the latest quarters as read above, joined: their query run again in two correlated look-ups
    # took a third of the statement's 18 ms at 1,000 workbooks)
    off = con.execute(
        """
        with latest as (select unnest($units) as org_unit_code, unnest($periods) as period_code),
        missed as (
            select s.*, coalesce(nullif(a.jurisdiction_code, ''), s.org_unit_code) as jurisdiction
            from fct_target_scorecard as s left join dim_agency as a using (org_unit_code)
            where s.met = false and s.period_code similar to '[0-9]{4}-Q[1-4]'
        )
        select m.plan_id, m.target_id, m.indicator_code, m.org_unit_code, m.admin_level, m.value, m.operator,
               m.target_value, m.gap_points, m.status, m.projected_met, m.period_code, count(*) over () as total
        from missed as m
        left join latest as j on j.org_unit_code = m.jurisdiction
        left join latest as o on o.org_unit_code = m.org_unit_code
        where m.period_code = coalesce(j.period_code, o.period_code)
        order by m.scope = 'agency', coalesce(m.gap_points, 0) desc, m.plan_id, m.target_id, m.org_unit_code, m.admin_level
        limit 8
        """,
        {"units": [unit for unit, _ in latest], "periods": [period for _, period in latest]},
    ).fetchall()
    lines.append(
        f"Chỉ tiêu chưa đạt, quý gần nhất / targets not met, latest quarter: {off[0][-1] if off else 0} (fct_target_scorecard)"
    )
    for plan, target, indicator, unit, level, value, op, goal, gap, status, will, period, _ in off:
        outlook = {True: "sẽ đạt / on course", False: "không kịp / will miss"}.get(will, "chưa rõ / unknown")
        lines.append(
            f"  {period} {plan} {target} {indicator} @ {unit} ({level}): {value:.1f} {op} {goal:g}, thiếu / short {gap:.1f}"
            f" - {status}, {outlook}"
        )
    coverage = con.execute(
        f"""
        select plan_id,
               count(*) filter (where can_score) as scored,
               count(*) filter (where coverage_reason = 'phase_not_started') as phase_not_started,
               count(*) filter (where coverage_reason = 'no_reporting_unit') as no_reporting_unit,
               count(*) filter (where coverage_reason = 'no_data_for_period') as no_data_for_period,
               count(*) filter (where coverage_reason = 'external_not_recorded') as external_not_recorded
        from {coverage_from}
        where period_year <= (select max(period_year) from fct_target_scorecard)
        group by plan_id order by plan_id
        """
    ).fetchall()
    lines.append(
        "Chỉ tiêu × năm chấm được / targets × years scored (chưa chấm được vì / not scorable: chưa đến giai đoạn / phase not"
        " started, không có đơn vị / no reporting unit, thiếu số liệu / no data, chỉ số công bố chưa nhập / external not"
        " recorded; v_target_coverage):"
    )
    lines += [f"  {plan}: {ok} | {ns} | {nu} | {nd} | {ne}" for plan, ok, ns, nu, nd, ne in coverage]
    lines.append(
        "Báo cáo quý / quarterly report: python -m pipelines report --period "
        f"{max(p for _, p in latest)} --out reports/   (xlsx, PDF, PNG; docs/report.md)"
    )


def template(agency: str, period: str, out: Path) -> Path:
    """A blank CCHC-1 workbook for one agency and period, every data element row present."""
    from pipelines.catalog import Catalog
    from pipelines.form_writer import FormContent, Quirks, write_form
    from pipelines.periods import PeriodError, parse_period

    catalog = Catalog.load(Path(catalog_dir_of(os.environ)))
    unit = catalog.units_by_code.get(agency)
    if unit is None:
        near = difflib.get_close_matches(agency.upper(), list(catalog.units_by_code), n=5, cutoff=0.6)
        hint = f" (gần giống / similar: {', '.join(near)})" if near else ""
        raise CliError(f"Mã đơn vị '{agency}' không có trong danh mục (org_units.csv) / unknown agency code: '{agency}'{hint}")
    try:
        label = parse_period(period).label_vi
    except PeriodError:
        raise CliError(
            f"Kỳ báo cáo '{period}' không hợp lệ: hãy viết Quý I/2025, 6 tháng đầu năm 2025, Quý III/2025, Năm 2025 hoặc"
            f" 2025-Q1, 2025-H1, 2025-Q3, 2025-Y / '{period}' is not a report period: write e.g. 'Quý I/2025' or 2025-Q1"
            " (the form has Q1, H1, Q3 and year reports)"
        ) from None
    elements = catalog.records.data_elements
    labels = {e.code: (("- " if e.parent_code else "") + e.name_vi, e.unit) for e in elements}
    content = FormContent(
        agency,
        unit.name_vi,
        label,
        None,
        {e.code: None for e in elements},
        labels=labels,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_form(out, content, Quirks(title_rows=2))


def report_command(period: str, out: Path, jurisdiction: str | None) -> list[Path]:
    """The PAR office's quarterly report (xlsx, PDF, PNG charts) from the published database."""
    import duckdb

    from pipelines.catalog import Catalog
    from pipelines.periods import parse_quarter, partition_quarter
    from pipelines.report import jurisdictions, write_report

    quarter = partition_quarter(parse_quarter(period)).code
    db = _published_database()
    catalog = Catalog.load(Path(catalog_dir_of(os.environ)))
    con = duckdb.connect(str(db), read_only=True)
    try:
        known = jurisdictions(con)
        if jurisdiction and jurisdiction not in known:
            raise CliError(
                f"Không có địa bàn '{jurisdiction}' trong số liệu (có: {', '.join(known) or 'không có'})"
                f" / no jurisdiction '{jurisdiction}' in the data (known: {', '.join(known) or 'none'})"
            )
        if not known:
            raise CliError(f"Chưa có số liệu để lập báo cáo trong {db} / no data to report in {db}")
        return write_report(con, catalog, quarter, out, jurisdiction)
    finally:
        con.close()


def describe_command(database: Path | None, as_json: bool) -> int:
    from pipelines.schema import render

    database = database or _database_setting()
    if not database.exists():
        raise CliError(f"Không có tệp cơ sở dữ liệu {database} / no database file {database}")
    print(render(database, as_json))
    return 0


def export_command(database: Path | None, url: str, schema: str | None) -> int:
    """Copy the published tables, with their comments, to an organisation's PostgreSQL (SQLAlchemy)."""
    from pipelines.export import export

    database = database or _database_setting()
    if not database.exists():
        raise CliError(
            f"Không có tệp cơ sở dữ liệu {database}: hãy chạy pipeline trước / no database file {database}: run the pipeline first"
        )
    try:
        counts = export(database, url, schema)
    except Exception as exc:  # a server that refuses, a bad URL: the user's to fix, named without the password
        import sqlalchemy

        if isinstance(exc, sqlalchemy.exc.SQLAlchemyError | ValueError):
            raise CliError(
                f"Không xuất được sang PostgreSQL ({type(exc).__name__}): {str(exc).splitlines()[0]} / the export to PostgreSQL failed;"
                " nothing was changed there"
            ) from None
        raise
    for table, rows in counts.items():
        print(f"{table}: {rows}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Dagster logs")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run on the shipped demo data (data/raw) and print a summary")
    run_p = sub.add_parser(
        "run",
        help="run the quarterly job for quarters (default: those with workbooks whose run could differ from their last), then publish",
    )
    run_p.add_argument(
        "--partition",
        "--quarter",
        dest="partition",
        action="append",
        help='a quarter: 2024-Q2, "Quý II/2024" or "6 tháng đầu năm 2024" (repeatable)',
    )
    run_p.add_argument(
        "--all",
        dest="run_all",
        action="store_true",
        help="run every quarter with workbooks (default: those whose workbooks, catalog, code or settings changed since"
        " their last run, and the quarters still open)",
    )
    sub.add_parser("summary", help="print the summary of the latest quarter")
    desc = sub.add_parser("describe", help="list the curated tables and their columns (JSON with --json)")
    desc.add_argument("--database", type=Path, help="DuckDB file (default: CCHC_DATABASE or data/curated/cchc.duckdb)")
    desc.add_argument("--json", action="store_true")
    rep = sub.add_parser("report", help="write the PAR office's quarterly report (xlsx, PDF, PNG charts)")
    rep.add_argument("--period", required=True, help='a quarter: 2024-Q4 or "Quý IV/2024"')
    rep.add_argument("--out", required=True, type=Path, help="folder to write into")
    rep.add_argument("--jurisdiction", help="one jurisdiction code (default: one set per jurisdiction)")
    exp = sub.add_parser("export", help="copy the published tables to PostgreSQL (SQLAlchemy), with their comments")
    exp.add_argument("--to", required=True, help="postgresql://user@host:port/dbname (a password may come from PGPASSWORD)")
    exp.add_argument("--database", type=Path, help="DuckDB file (default: CCHC_DATABASE or data/curated/cchc.duckdb)")
    exp.add_argument("--schema", help="PostgreSQL schema (default: the server's default)")
    tpl = sub.add_parser("template", help="write a blank reporting workbook for an agency")
    tpl.add_argument("--agency", required=True)
    tpl.add_argument("--period", required=True)
    tpl.add_argument("--out", required=True, type=Path)
    srv = sub.add_parser(
        "serve",
        help="keep the libraries loaded and run this installation's commands in forked processes (docs/operations.md)",
    )
    srv.add_argument(
        "--socket", type=Path, help="the Unix socket (default: CCHC_WORKER_SOCKET or worker.sock in the work folder)"
    )
    args = parser.parse_args(argv)
    debug = args.debug or debug_on((), os.environ)
    never_lose_an_interrupt(show=debug)
    if not debug:
        quiet_interrupts_in_library_logs()
    try:
        return _dispatch(args, debug)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went to a pager or `head` that closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug or not _is_user_error(exc):
            if not debug:
                print(
                    f"LỖI HỆ THỐNG / INTERNAL ERROR: {type(exc).__name__}: {exc}\n"
                    "Đây là lỗi của chương trình, không phải của số liệu; hãy báo cho người quản trị kèm kết quả chạy lại với --debug."
                    " / This is a defect, not a data problem: report it with the output of a re-run with --debug.",
                    file=sys.stderr,
                )
                return 3
            raise
        print(_user_message(exc), file=sys.stderr)
        return 2


def _user_message(exc: BaseException) -> str:
    """What a user error says: its own message; a file system error with the path it concerns and
    the settings that name the folders, in Vietnamese and English."""
    if not isinstance(exc, OSError) or type(exc).__module__ != "builtins":  # a library's own error: its message
        return str(exc)
    what = exc.strerror or type(exc).__name__
    where = exc.filename if exc.filename is not None else ""
    target = f" {exc.filename2}" if exc.filename2 else ""
    return (
        f"Không truy cập được {where}{target}: {what} / cannot access {where}{target}: {what}. Kiểm tra đường dẫn và"
        " quyền của thư mục / check the path and the folder's permissions (CCHC_RAW_DIR, CCHC_DATABASE, CCHC_WORK_DIR,"
        " CCHC_OUTBOX_DIR, CCHC_CATALOG_DIR, DAGSTER_HOME)."
    )


def _is_user_error(exc: BaseException) -> bool:
    from pipelines.catalog import CatalogError
    from pipelines.errors import ConfigError
    from pipelines.locking import WarehouseBusy
    from pipelines.periods import PeriodError

    return isinstance(exc, CliError | CatalogError | PeriodError | ConfigError | WarehouseBusy | OSError)


def _dispatch(args, debug: bool) -> int:
    _prepare_environment()
    if args.command == "serve":
        from pipelines.worker import serve

        return serve(args.socket)
    if args.command == "describe":
        return describe_command(args.database, args.json)
    if args.command == "template":
        print(template(args.agency, args.period, args.out))
        return 0
    if args.command == "export":
        return export_command(args.database, args.to, args.schema)
    if args.command == "report":
        for path in report_command(args.period, args.out, args.jurisdiction):
            print(path)
        return 0
    if args.command in ("demo", "run"):
        quarters = resolve_quarters(getattr(args, "partition", None))
        print("Đang chạy pipeline / running the pipeline ...")
        done = run(quarters, debug=debug, run_all=getattr(args, "run_all", False))
        if not done:
            return 1
        try:
            print(summary())
        except CliError as exc:  # the run succeeded and is published; only the summary could not be read
            print(str(exc), file=sys.stderr)
        return 0
    print(summary())
    return 0
