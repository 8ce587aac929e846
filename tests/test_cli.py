"""The command line: a blank form reads back complete; the summary names the database."""

import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from pipelines.workbook import read_workbook
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # separate CLI processes: the full tier (pytest -m "not slow" skips it)


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], capture_output=True, text=True, cwd=REPO, env=env, check=False
    )


def test_template_is_a_blank_form_every_element_can_be_typed_into(tmp_path, catalog):
    out = tmp_path / "TD-XA-LIEUTU_2025-Q1.xlsx"
    result = run_cli("template", "--agency", "TD-XA-LIEUTU", "--period", "Quý I/2025", "--out", str(out))
    assert result.returncode == 0, result.stderr
    wb = read_workbook(out)
    assert wb.agency_code == "TD-XA-LIEUTU" and wb.period.code == "2025-Q1"
    assert [f.code for f in wb.figures] == list(catalog.data_elements["code"])
    assert all(f.value is None for f in wb.figures)
    assert next(f for f in wb.figures if f.code == "HSO.02").row_label.startswith("- Trong đó")


def assert_plain_error(result, *phrases):
    """A user error: exit code 2, the message on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_template_refuses_an_unknown_agency(tmp_path):
    result = run_cli("template", "--agency", "TD-XA-KHONGCO", "--period", "Quý I/2025", "--out", str(tmp_path / "x.xlsx"))
    assert_plain_error(result, "unknown agency code", "TD-XA-KHONGCO", "org_units.csv")


@pytest.mark.parametrize("period", ["Q1 2025x", "Quý II/2025", "2025-13", ""])
def test_template_refuses_a_period_the_form_has_not(tmp_path, period):
    result = run_cli("template", "--agency", "TD-XA-LIEUTU", "--period", period, "--out", str(tmp_path / "x.xlsx"))
    assert_plain_error(result, "không hợp lệ", "is not a report period")


def test_template_accepts_a_quarter_written_first(tmp_path):
    result = run_cli("template", "--agency", "TD-XA-LIEUTU", "--period", "Q1 2025", "--out", str(tmp_path / "x.xlsx"))
    assert result.returncode == 0, result.stderr
    assert read_workbook(tmp_path / "x.xlsx").period.code == "2025-Q1"


def _env(tmp_path, **extra):
    return (
        os.environ
        | {
            "CCHC_RAW_DIR": str(tmp_path / "raw"),
            "CCHC_DATABASE": str(tmp_path / "x.duckdb"),
            "DAGSTER_HOME": str(REPO),
        }
        | extra
    )


def test_summary_names_the_database_it_reads_or_misses(tmp_path):
    result = run_cli("summary", env=_env(tmp_path, CCHC_WORKER="off"))
    assert_plain_error(result, str(tmp_path / "x.duckdb"), "run the pipeline first")
    with duckdb.connect(str(tmp_path / "x.duckdb")):
        pass  # a DuckDB file the pipeline did not publish (CCHC_DATABASE set wrong)
    result = run_cli("summary", env=_env(tmp_path, CCHC_WORKER="off"))
    assert_plain_error(result, str(tmp_path / "x.duckdb"), "not a database this pipeline published", "CCHC_DATABASE")


def test_run_with_an_empty_raw_folder_says_so(tmp_path):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", env=_env(tmp_path))
    assert result.returncode == 1 and "no workbook under" in result.stderr


def test_run_with_a_missing_raw_folder_names_it(tmp_path):
    result = run_cli("run", env=_env(tmp_path))
    assert_plain_error(result, str(tmp_path / "raw"), "CCHC_RAW_DIR", "does not exist")


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_dagster_home_that_is_not_a_folder_is_named(tmp_path, relative):
    """A DAGSTER_HOME that does not exist is the user's setting, not a defect (Dagster's own error
    made it "INTERNAL ERROR", exit 3); a relative one is taken from where the command started."""
    (tmp_path / "raw").mkdir()
    home = "no-such-home" if relative else str(tmp_path / "no-such-home")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path) | {"DAGSTER_HOME": home, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert_plain_error(result, f"DAGSTER_HOME={tmp_path / 'no-such-home'}", "is not an existing folder")


@pytest.mark.parametrize("quarter", ["Q5 2024", "2024-Q7", "hôm qua"])
def test_run_refuses_a_quarter_it_cannot_read(tmp_path, quarter):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", "--quarter", quarter, env=_env(tmp_path))
    assert_plain_error(result, "Không hiểu quý", "not a quarter", "2024-Q2")


def test_run_refuses_a_quarter_outside_the_tracked_range(tmp_path):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", "--quarter", "2019-Q1", env=_env(tmp_path))
    assert_plain_error(result, "2019-Q1", "outside the tracked range")


def test_a_bad_first_year_is_named(tmp_path):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", env=_env(tmp_path, CCHC_FIRST_YEAR="twenty"))
    assert_plain_error(result, "CCHC_FIRST_YEAR", "'twenty'", "must be a year")


@pytest.mark.parametrize("variable", ["CCHC_SMTP_PORT", "DAGSTER_EVENT_BATCH_SIZE"])
def test_a_bad_number_in_the_environment_is_named(tmp_path, variable):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", env=_env(tmp_path, **{variable: "twenty-five"}))
    assert_plain_error(result, variable, "twenty-five", "is not a number")


@pytest.mark.parametrize("as_of", ["garbage", "25/04/2021", "2021-13-01"])
def test_a_bad_as_of_time_is_named_before_any_run(tmp_path, as_of):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", env=_env(tmp_path, CCHC_AS_OF=as_of))
    assert_plain_error(result, "CCHC_AS_OF", repr(as_of), "is not an ISO 8601 date or time", "2025-04-20")
    assert "STEP_FAILURE" not in result.stdout + result.stderr


@pytest.mark.parametrize("variable", ["CCHC_MAIL_ENABLED", "CCHC_SMTP_STARTTLS"])
def test_a_yes_or_no_setting_that_is_neither_is_named(tmp_path, variable):
    (tmp_path / "raw").mkdir()
    result = run_cli("run", env=_env(tmp_path, **{variable: "maybe"}))
    assert_plain_error(result, variable, "'maybe'", "must be true or false")


def test_flags_read_the_usual_spellings():
    from pipelines.errors import env_flag

    assert [env_flag({"X": v}, "X", "false") for v in ("1", "TRUE", " yes ", "On")] == [True] * 4
    assert [env_flag({"X": v}, "X", "true") for v in ("0", "False", "no", "OFF")] == [False] * 4
    assert env_flag({}, "X", "true") is True and env_flag({"X": ""}, "X", "false") is False


def test_a_folder_the_run_cannot_use_is_named_in_both_languages(tmp_path):
    from tests.conftest import make_form

    make_form(tmp_path / "raw" / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the working folder should be", encoding="utf-8")
    result = run_cli("run", env=_env(tmp_path, CCHC_WORK_DIR=str(blocker / "work")))
    assert_plain_error(result, "Không truy cập được", "cannot access", str(blocker), "CCHC_WORK_DIR")


def test_a_receipts_register_named_but_missing_is_said_and_the_run_goes_on(tmp_path):
    from tests.conftest import make_form

    make_form(tmp_path / "raw" / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    missing = tmp_path / "so-tiep-nhan.csv"
    result = run_cli("run", env=_env(tmp_path, CCHC_RECEIPTS_REGISTER=str(missing), CCHC_MAIL_ENABLED="false"))
    assert result.returncode == 0, result.stderr
    assert (
        f"CCHC_RECEIPTS_REGISTER={missing}" in result.stderr and "received times are when the pipeline first saw" in result.stderr
    )


def test_a_receipts_register_row_with_a_bad_time_is_said_and_the_run_goes_on(tmp_path):
    from tests.conftest import make_form

    make_form(tmp_path / "raw" / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    register = tmp_path / "raw" / "receipts.csv"
    register.write_text("file_name,received_at\nTD-XA-LIEUTU_2024-Q1.xlsx,ngày 8/4\n", encoding="utf-8")
    result = run_cli("run", env=_env(tmp_path, CCHC_MAIL_ENABLED="false"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Stack Trace" not in result.stderr
    assert "Sổ nhận báo cáo có 1 dòng" in result.stderr
    assert f"{register}, dòng/row 2, cột/column received_at: 'ngày 8/4'" in result.stderr
    assert "the row is skipped: TD-XA-LIEUTU_2024-Q1.xlsx takes" in result.stderr


def _catalog_with(tmp_path, edit):
    folder = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", folder)
    edit(folder)
    return folder


def test_a_duplicated_org_unit_code_names_the_file_and_row(tmp_path):
    def duplicate(folder):
        lines = (folder / "org_units.csv").read_text(encoding="utf-8").splitlines()
        (folder / "org_units.csv").write_text("\n".join([*lines, lines[3]]) + "\n", encoding="utf-8")

    folder = _catalog_with(tmp_path, duplicate)
    (tmp_path / "raw").mkdir()
    result = run_cli("run", env=_env(tmp_path, CCHC_CATALOG_DIR=str(folder)))
    rows = (folder / "org_units.csv").read_text(encoding="utf-8").splitlines()
    assert_plain_error(result, "org_units.csv", f"dòng/row {len(rows)}", "duplicate org unit code", "dòng/row 4")


@pytest.mark.parametrize(
    ("file", "old", "new", "phrases"),
    [
        (
            "org_units.csv",
            ",commune,TD,",
            ",hamlet,TD,",
            ["org_units.csv", "admin_level", "'hamlet'", "province, district, commune"],
        ),
        ("org_units.csv", ",TD,TD,TD,true,", ",TD,XX-NOWHERE,TD,true,", ["org_units.csv", "jurisdiction_code", "'XX-NOWHERE'"]),
        ("org_units.csv", ",2009-08-01,", ",01/08/2009,", ["org_units.csv", "valid_from", "'01/08/2009'", "YYYY-MM-DD"]),
        ("calendars.csv", ",11,", ",eleven,", ["calendars.csv", "due_day", "'eleven'", "from 1 to 28"]),
    ],
)
def test_catalog_errors_name_the_file_row_and_column(tmp_path, file, old, new, phrases):
    def edit(folder):
        text = (folder / file).read_text(encoding="utf-8")
        assert old in text
        (folder / file).write_text(text.replace(old, new, 1), encoding="utf-8")

    folder = _catalog_with(tmp_path, edit)
    result = run_cli(
        "template",
        "--agency",
        "TD-XA-LIEUTU",
        "--period",
        "Quý I/2025",
        "--out",
        str(tmp_path / "x.xlsx"),
        env=_env(tmp_path, CCHC_CATALOG_DIR=str(folder)),
    )
    assert_plain_error(result, *phrases, "dòng/row")


def test_a_broken_plan_file_names_its_yaml_path(tmp_path):
    def edit(folder):
        path = folder / "plans" / "tran-de-2024.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("indicator: ", "indicator_typo: ", 1), encoding="utf-8")

    folder = _catalog_with(tmp_path, edit)
    result = run_cli(
        "template",
        "--agency",
        "TD-XA-LIEUTU",
        "--period",
        "Quý I/2025",
        "--out",
        str(tmp_path / "x.xlsx"),
        env=_env(tmp_path, CCHC_CATALOG_DIR=str(folder)),
    )
    assert_plain_error(result, "plans/tran-de-2024.yaml", "targets[0]", "indicator")


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli(
        "--debug", "template", "--agency", "TD-XA-KHONGCO", "--period", "Quý I/2025", "--out", str(tmp_path / "x.xlsx")
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


_INTERRUPTED_WHILE_CLOSING = """
import sys

import sqlalchemy

from pipelines import cli


def dispatch(args, debug):  # a Ctrl-C that lands while SQLAlchemy's pool closes a connection
    engine = sqlalchemy.create_engine("sqlite://", poolclass=sqlalchemy.pool.NullPool)

    def interrupted(connection):
        raise KeyboardInterrupt

    engine.dialect.do_close = interrupted
    with engine.connect() as connection:
        connection.exec_driver_sql("select 1")
    return 0


cli._dispatch = dispatch
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_ctrl_c_while_a_library_closes_a_connection_ends_with_one_short_message(debug):
    """SQLAlchemy logs the KeyboardInterrupt with its traceback, then lets it go on (CI saw it
    once, in a Ctrl-C at a command's start): the command says "interrupted" once; --debug shows all."""
    args = ["--debug", "summary"] if debug else ["summary"]
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_WHILE_CLOSING, *args], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 130, result.stderr
    if debug:
        assert "Exception closing connection" in result.stderr and "KeyboardInterrupt" in result.stderr
    else:
        assert result.stderr == "Đã dừng / interrupted\n"


_INTERRUPTED_IN_A_CALLBACK = """
import signal
import sys
import time
import weakref

from pipelines import cli


class Collection:
    pass


def dispatch(args, debug):  # a Ctrl-C that lands while a weak reference's callback runs (Python drops it there)
    def collected(ref):
        signal.raise_signal(signal.SIGINT)  # KeyboardInterrupt inside the callback

    kept = Collection()
    ref = weakref.ref(kept, collected)
    del kept
    time.sleep(30)  # e.g. waiting for the run lock: the Ctrl-C must end this
    print("not interrupted")
    return 0


cli._dispatch = dispatch
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_ctrl_c_dropped_in_a_library_callback_still_ends_the_command(debug):
    """CI saw it: a Ctrl-C landed in SQLAlchemy's `_collection_gced` callback, Python printed
    "Exception ignored in" and dropped it, and the command went on waiting for the run lock."""
    args = ["--debug", "summary"] if debug else ["summary"]
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_IN_A_CALLBACK, *args],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 130 and "not interrupted" not in result.stdout, (result.stdout, result.stderr)
    if debug:
        assert "Exception ignored in" in result.stderr and "KeyboardInterrupt" in result.stderr
    else:
        assert result.stderr == "Đã dừng / interrupted\n"


def test_an_error_raised_by_an_interruption_counts_as_one():
    """A DuckDB statement that a Ctrl-C stops raises "Query interrupted" with the interruption as its
    context (or cause): the command says it was stopped (exit 130), with --debug too, where Dagster
    raises what the step raised; an error that no interruption raised is a failure."""
    from types import SimpleNamespace

    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._utils.error import SerializableErrorInfo

    from pipelines.cli import _interrupted, _raised_by_interruption

    def raised(cause: bool) -> BaseException:
        try:
            try:
                raise DagsterExecutionInterruptedError()
            except DagsterExecutionInterruptedError as interruption:
                if cause:
                    raise RuntimeError("Query interrupted") from interruption
                raise RuntimeError("Query interrupted")  # noqa: B904 (as DuckDB raises it: the context)
        except RuntimeError as exc:
            return exc

    assert _raised_by_interruption(raised(cause=True)) and _raised_by_interruption(raised(cause=False))
    assert _raised_by_interruption(KeyboardInterrupt())
    assert not _raised_by_interruption(RuntimeError("Query interrupted"))

    def info(name: str, cause=None, context=None) -> SerializableErrorInfo:
        return SerializableErrorInfo(message=name, stack=[], cls_name=name, cause=cause, context=context)

    def result(error) -> SimpleNamespace:
        return SimpleNamespace(all_events=[SimpleNamespace(event_specific_data=SimpleNamespace(error=error))])

    interruption = info("DagsterExecutionInterruptedError")
    assert _interrupted(result(info("DagsterExecutionStepExecutionError", cause=info("RuntimeError", context=interruption))))
    assert _interrupted(result(info("DagsterExecutionStepExecutionError", cause=info("RuntimeError", cause=interruption))))
    assert not _interrupted(result(info("DagsterExecutionStepExecutionError", cause=info("RuntimeError"))))
