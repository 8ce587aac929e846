"""A command leaves the external-values tables (pipelines/external.py) out of its run while they
would come out the same (pipelines/cli.py, `_external_kept`): real CLI processes on a service of
their own (tests/test_shared_service.py's fixture), the Dagster runs' materializations read back."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance

from tests.conftest import REPO
from tests.test_shared_service import cli, service  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]

EXTERNAL = ("raw_external_value", "fct_external_value", "fct_external_finding")
EXTERNAL_HEADER = "Mã chỉ số (indicator_code),Mã địa bàn (jurisdiction_code),Cấp,Năm,Giá trị,Văn bản nguồn,Ghi chú"


def write_external(raw: Path, rank: int) -> None:
    (raw / "external").mkdir(parents=True, exist_ok=True)
    (raw / "external" / "par_index.csv").write_text(
        f"{EXTERNAL_HEADER}\npar_index_rank_national,CT,,2023,{rank},Quyết định 1234/QĐ-BNV ngày 01/04/2024,\n", encoding="utf-8"
    )


def test_the_external_values_are_rebuilt_only_when_their_forms_the_catalog_or_the_tables_change(service):  # noqa: F811
    """A command leaves the external-values tables out of its run while the forms under
    <raw>/external, the catalog and the tables are as it last built them; any of them changing
    brings them back, and the published values follow the forms."""
    write_external(service["raw"], 12)

    def run_and_read() -> tuple[set[str], float]:
        done = cli(service, "run")
        assert done.returncode == 0, done.stderr
        with DagsterInstance.from_config(str(service["home"])) as instance:
            (last,) = instance.get_runs(limit=1)
            built = {
                e.dagster_event.asset_key.path[-1]
                for e in instance.all_logs(last.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            }
        with duckdb.connect(str(service["db"]), read_only=True) as con:
            (rank,) = con.execute(
                "select value from fct_external_value where indicator_code = 'par_index_rank_national' and year = 2023"
            ).fetchone()
        return built & set(EXTERNAL), rank

    assert run_and_read() == (set(EXTERNAL), 12)  # a new working database: built
    assert run_and_read() == (set(), 12)  # nothing changed: left as they are
    write_external(service["raw"], 9)
    assert run_and_read() == (set(EXTERNAL), 9)  # the form changed
    (work,) = service["tmp"].rglob("*.work.duckdb")
    with duckdb.connect(str(work)) as con:  # another writer (a run the daemon started) wrote a table since
        con.execute("update incremental_state set token = 'elsewhere' where table_name = 'fct_external_value'")
    assert run_and_read() == (set(EXTERNAL), 9)
    catalog = service["tmp"] / "catalog"
    shutil.copytree(REPO / "catalog", catalog)
    service["env"]["CCHC_CATALOG_DIR"] = str(catalog)
    assert run_and_read() == (set(EXTERNAL), 9)  # another catalog: the dimensions and these are built again
