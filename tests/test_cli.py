"""The command line: a blank form reads back complete; the summary names the database."""

import os
import subprocess
import sys

from pipelines.workbook import read_workbook
from tests.conftest import REPO


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


def test_template_refuses_an_unknown_agency(tmp_path):
    result = run_cli("template", "--agency", "TD-XA-KHONGCO", "--period", "Quý I/2025", "--out", str(tmp_path / "x.xlsx"))
    assert result.returncode != 0 and "unknown agency code" in result.stderr


def test_run_with_an_empty_raw_folder_says_so(tmp_path):
    env = os.environ | {
        "CCHC_RAW_DIR": str(tmp_path / "empty"),
        "CCHC_DATABASE": str(tmp_path / "x.duckdb"),
        "DAGSTER_HOME": str(REPO),
    }
    result = run_cli("run", env=env)
    assert result.returncode == 1 and "no workbook under" in result.stderr
