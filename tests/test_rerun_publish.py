"""A re-run's publish and its unassigned slice: what this process wrote since the last publish is
what the publish copies (no comparison of the year's rows), and an empty unassigned slice is not
built again. Each result equals a full build and a full publish."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from pipelines import incremental
from tests.conftest import Tracing, counted_copies, make_form
from tests.test_incremental import COMMUNES, _figures

NOW = dt.datetime(2024, 5, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))
KEYED = ("fct_data_element_value", "fct_indicator_value", "fct_target_scorecard", "fct_submission")


def _published(path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [t for (t,) in con.execute("select table_name from duckdb_tables() where table_name <> 'publish_log'").fetchall()]
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in sorted(names)}
    finally:
        con.close()


def _quarter(tmp_path, catalog, count: int = 4):
    raw = tmp_path / "raw"
    for i, code in enumerate(COMMUNES[:count]):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", _figures(i))
    return raw


def _build(con, catalog, raw, tmp_path):
    from pipelines import steps

    steps.build_quarter(con, catalog, "2024-Q1", NOW, raw_dir=raw, cache_dir=tmp_path / "parsed")


def _compared(statements: list[str], table: str) -> bool:
    """Whether the publish compared the copy's rows of `table` with the working table's (digests)."""
    return any("sum(hash(" in s and re.search(rf'publish_target"?\.main\."?{table}\b', s) for s in statements)


@pytest.fixture
def work(tmp_path, catalog):
    from pipelines import steps
    from pipelines.warehouse import Warehouse

    incremental.forget()
    with Warehouse(tmp_path / "work.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        yield con
    incremental.forget()


@pytest.mark.parametrize("known", [True, False], ids=["written here", "written by another process"])
def test_a_publish_copies_the_groups_this_process_wrote_since_the_last_one(work, catalog, tmp_path, known):
    """One workbook changed: the publish that follows the re-run deletes and inserts that agency's
    rows (and its jurisdiction's) in the copy without comparing the year's rows, and the file
    equals a full publish. When the writes were made by another process (what they changed is not
    known here), the publish compares the rows as before, with the same result."""
    from pipelines.publish import publish

    raw = _quarter(tmp_path, catalog)
    target, full = tmp_path / "pub" / "cchc.duckdb", tmp_path / "full" / "cchc.duckdb"
    _build(work, catalog, raw, tmp_path)
    publish(work, target, run_id="first", partitions=("2024-Q1",))

    changed = COMMUNES[1]
    make_form(raw / "2024-Q1" / f"{changed}_2024-Q1.xlsx", changed, "Quý I/2024", _figures(1, 7))
    _build(work, catalog, raw, tmp_path)
    if not known:
        incremental.forget()
    statements: list[str] = []
    publish(Tracing(work, statements), target, run_id="second", partitions=("2024-Q1",))

    if known:
        # nor the figures of the quarter's workbooks as read (a publish-time table from raw_value)
        assert [t for t in (*KEYED, "fct_submission_value") if _compared(statements, t)] == []
        deletes = [s for s in statements if s.startswith('delete from publish_target."fct_data_element_value"')]
        assert len(deletes) == 1 and changed in deletes[0]
        assert not [c for c in COMMUNES[:4] if c != changed and c in deletes[0]]
        # nothing left to say after the publish: a next one compares, until this process writes again
        assert incremental._SINCE == {}
    else:
        assert all(_compared(statements, t) for t in ("fct_data_element_value", "fct_indicator_value", "fct_submission_value"))
    publish(work, full, run_id="full", incremental=False)
    assert _published(target) == _published(full)
    one = duckdb.connect(str(target), read_only=True)
    try:
        assert one.execute(
            "select value from fct_data_element_value where agency_code = $a and period_code = '2024-Q1' and element_code = 'HSO.01'",
            {"a": changed},
        ).fetchone() == (_figures(1, 7)["HSO.01"],)
    finally:
        one.close()


def test_writes_chain_from_the_last_publish_and_a_break_in_the_chain_is_not_trusted(work):
    """The groups since the publish are those of every write of this process since then, as long
    as each write follows the one before (a rolled-back write breaks the chain: not known), each
    said its groups (a whole rewrite: not known), and the chain begins at the publish's token."""
    work.execute("create table t (k varchar)")
    slice_key = "partition_key=2024-Q1"
    incremental.wrote(work, "t", slice_key, ["A"])
    incremental.published(work)
    assert incremental.since_publish(work, "t", [slice_key]) is None  # nothing written since: not known
    incremental.wrote(work, "t", slice_key, ["B"])
    incremental.wrote(work, "t", slice_key, ["C", "B"])
    assert incremental.since_publish(work, "t", [slice_key]) == {"B", "C"}
    assert incremental.since_publish(work, "t", [slice_key, "partition_key=unassigned"]) is None  # a slice not written here

    work.execute("begin transaction")
    incremental.wrote(work, "t", slice_key, ["D"])
    work.execute("rollback")
    assert incremental.since_publish(work, "t", [slice_key]) is None  # the chain's last token is not the table's
    incremental.wrote(work, "t", slice_key, ["E"])
    assert incremental.since_publish(work, "t", [slice_key]) is None  # begins after the rolled-back write

    incremental.published(work)
    incremental.wrote(work, "t", slice_key, None)
    assert incremental.since_publish(work, "t", [slice_key]) is None  # written whole
    incremental.published(work)
    incremental.unchanged(work, "t", slice_key)
    assert incremental.since_publish(work, "t", [slice_key]) == frozenset()


def test_an_empty_unassigned_slice_is_not_built_and_a_workbook_without_a_period_is(work, catalog, tmp_path):
    """A quarter's run builds each per-workbook model's unassigned slice too (workbooks whose period
    cannot be read). While it is empty, and so is every table the model reads there, it is left
    alone; a workbook without a period gets its rows through every layer, and they leave with it.
    The tables equal a fresh build at each step."""
    from pipelines import steps
    from pipelines.models import all_models
    from pipelines.warehouse import Warehouse
    from tests.test_incremental import _tables

    raw = _quarter(tmp_path, catalog, count=2)
    unassigned = "partition_key=unassigned"
    per_workbook = sorted(m.name for m in all_models().values() if m.unassigned and m.deps)

    def fresh() -> dict:
        path = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}.duckdb"
        with Warehouse(path).connect() as con:
            steps.publish_dimensions(con, catalog)
            steps.build_quarter(con, catalog, "2024-Q1", NOW, raw_dir=raw, cache_dir=tmp_path / f"{path.stem}-parsed")
            return _tables(con)

    def slice_rows() -> dict[str, int]:
        return {
            t: work.execute(f"select count(*) from {t} where partition_key = 'unassigned'").fetchone()[0] for t in per_workbook
        }

    _build(work, catalog, raw, tmp_path)  # the first build: every table made
    incremental.LAST_SCOPE.clear()
    _build(work, catalog, raw, tmp_path)
    assert {m: incremental.LAST_SCOPE.get((m, unassigned)) for m in per_workbook} == dict.fromkeys(per_workbook, ())
    assert set(slice_rows().values()) == {0}

    stray = make_form(raw / "bao-cao-khong-ro-ky.xlsx", COMMUNES[3], "Kỳ nào đó", _figures(3))
    incremental.LAST_SCOPE.clear()
    _build(work, catalog, raw, tmp_path)
    rows = slice_rows()
    assert rows["stg_submission"] == rows["fct_submission"] == 1 and rows["int_finding"] >= 1, rows
    assert all(incremental.LAST_SCOPE.get((m, unassigned)) != () for m in per_workbook)
    assert _tables(work) == fresh()

    stray.unlink()
    _build(work, catalog, raw, tmp_path)
    assert set(slice_rows().values()) == {0}
    assert _tables(work) == fresh()
    incremental.LAST_SCOPE.clear()
    _build(work, catalog, raw, tmp_path)
    assert {m: incremental.LAST_SCOPE.get((m, unassigned)) for m in per_workbook} == dict.fromkeys(per_workbook, ())


def test_the_state_rows_of_the_last_publish_do_not_mix_with_the_slices(work):
    """The tokens kept at a publish are rows of their own (`published|<slice>`), copied from the
    slices' rows; publishing again replaces them."""
    work.execute("create table t (k varchar)")
    incremental.wrote(work, "t", "period_year=2024", ["A"])
    incremental.published(work)
    incremental.wrote(work, "t", "period_year=2024", ["B"])
    incremental.published(work)
    rows = work.execute("select slice, token from incremental_state where table_name = 't' order by slice").fetchall()
    assert [s for s, _ in rows] == ["period_year=2024", "published|period_year=2024"]
    assert rows[0][1] == rows[1][1] and re.fullmatch(r"[0-9a-f]{32}", rows[0][1])


def _value(path, agency: str) -> float:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select value from fct_data_element_value where agency_code = $a and period_code = '2024-Q1' and element_code = 'HSO.01'",
            {"a": agency},
        ).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("known", [True, False], ids=["written here", "written by another process"])
def test_the_spare_is_brought_up_to_date_in_place_with_what_both_publishes_since_changed(
    work, catalog, tmp_path, monkeypatch, known
):
    """From the third publish on, the file published the time before (kept as the spare) is brought
    up to date in place and becomes the published file: nothing is copied. It lacks what the last
    publish rewrote (recorded with the spare) as well as what was written since: both agencies'
    rows are rewritten, and no other's. When the writes since were made by another process, the
    groups are compared instead. Three changes, one agency at a time: each publish carries every
    change so far, and the last file equals a full publish."""

    from pipelines import publish as publishing

    raw = _quarter(tmp_path, catalog)
    target, spare = tmp_path / "pub" / "cchc.duckdb", tmp_path / "pub" / ".cchc.duckdb.spare"
    _build(work, catalog, raw, tmp_path)
    publishing.publish(work, target, run_id="first", partitions=("2024-Q1",), spare_from_mb=0)
    assert not spare.exists()  # nothing retired yet
    inodes = [target.stat().st_ino]
    copies = counted_copies(monkeypatch)
    for run, changed in enumerate(COMMUNES[1:4], start=2):
        make_form(raw / "2024-Q1" / f"{changed}_2024-Q1.xlsx", changed, "Quý I/2024", _figures(1, 7 + run))
        _build(work, catalog, raw, tmp_path)
        if not known:
            incremental.forget()
        statements: list[str] = []
        publishing.publish(Tracing(work, statements), target, run_id=f"run {run}", partitions=("2024-Q1",), spare_from_mb=0)
        # the file replaced is kept as the spare (a second name for it)
        assert spare.stat().st_ino == inodes[-1] and spare.stat().st_nlink == 1
        inodes.append(target.stat().st_ino)
        if run == 2:  # the second publish copies the first file: there is no spare yet
            assert copies == [str(target)] and inodes[-1] not in inodes[:-1]
        else:  # the file of two publishes ago, brought up to date: no copy
            assert copies == [str(target)] and inodes[-1] == inodes[-3]
            if known:
                assert [t for t in (*KEYED, "fct_submission_value") if _compared(statements, t)] == []
                deletes = [s for s in statements if s.startswith('delete from publish_target."fct_data_element_value"')]
                assert len(deletes) == 1, deletes
                assert [c for c in COMMUNES[:4] if c in deletes[0]] == sorted(COMMUNES[run - 2 : run], key=COMMUNES.index)
            else:
                assert all(_compared(statements, t) for t in ("fct_data_element_value", "fct_submission_value"))
        for done, agency in enumerate(COMMUNES[1:run], start=2):  # every change so far, the one before too
            assert _value(target, agency) == _figures(1, 7 + done)["HSO.01"]
        con = duckdb.connect(str(target), read_only=True)
        try:
            runs = [r for (r,) in con.execute("select run_id from publish_log order by published_at").fetchall()]
        finally:
            con.close()
        assert runs == ["first", *[f"run {r}" for r in range(2, run + 1)]]  # the whole log, the last publish's row too
    full = tmp_path / "full" / "cchc.duckdb"
    publishing.publish(work, full, run_id="full", incremental=False)
    assert _published(target) == _published(full)


@pytest.mark.parametrize("share", [None, 0.0], ids=["spare in place", "spare lags too much: copied"])
def test_the_spare_rewrites_only_the_groups_the_last_publish_rewrote_in_the_slices_it_alone_lacks(
    work, catalog, tmp_path, monkeypatch, share
):
    """A new quarter whose groups this process cannot name (written by another process, or more
    than can be named) onto the spare, which also lacks the last publish's rewrite of one agency in
    the quarter before: only that agency's rows of the quarter before are rewritten (the national
    ten-year history rewrote the whole year before, 1.8 million rows, for the one agency); the new
    quarter is written as it comes. When what the spare lacks besides this run's slices is over
    SPARE_MAX_LACK_SHARE of its rows, the published file is copied instead. Either way the file
    equals a full publish."""
    from pipelines import publish as publishing
    from pipelines import steps

    if share is not None:
        monkeypatch.setattr(publishing, "SPARE_MAX_LACK_SHARE", share)
    raw = _quarter(tmp_path, catalog)
    target, spare = tmp_path / "pub" / "cchc.duckdb", tmp_path / "pub" / ".cchc.duckdb.spare"
    _build(work, catalog, raw, tmp_path)
    publishing.publish(work, target, run_id="first", partitions=("2024-Q1",), spare_from_mb=0)
    make_form(raw / "2024-Q1" / f"{COMMUNES[1]}_2024-Q1.xlsx", COMMUNES[1], "Quý I/2024", _figures(1, 9))
    _build(work, catalog, raw, tmp_path)
    publishing.publish(work, target, run_id="re-run", partitions=("2024-Q1",), spare_from_mb=0)
    first_file = spare.stat().st_ino
    for i, code in enumerate(COMMUNES[:4]):
        make_form(
            raw / "2024-Q2" / f"{code}_2024-H1.xlsx", code, "6 tháng đầu năm 2024", _figures(i, 200),
            report_date=dt.date(2024, 7, 5),
        )  # fmt: skip
    later = dt.datetime(2024, 8, 1, 9, tzinfo=NOW.tzinfo)
    steps.build_quarter(work, catalog, "2024-Q2", later, raw_dir=raw, cache_dir=tmp_path / "parsed")
    incremental.forget()  # this run's groups not known by name; the spare's record of the last publish stays
    copies = counted_copies(monkeypatch)
    statements: list[str] = []
    publishing.publish(Tracing(work, statements), target, run_id="new quarter", partitions=("2024-Q2",), spare_from_mb=0)
    (changed,) = work.execute(
        "select submission_id from fct_submission where agency_code = $a and partition_key = '2024-Q1' and is_in_force",
        {"a": COMMUNES[1]},
    ).fetchone()
    deletes = [s for s in statements if s.startswith('delete from publish_target."fct_submission"')]
    if share is None:  # in place: the spare's file became the published one, nothing copied
        assert copies == [] and target.stat().st_ino == first_file
        (before,) = [s for s in deletes if "'2024-Q1'" in s]
        assert changed in before and not [c for c in COMMUNES[:4] if c in before]
        assert not _compared(statements, "fct_submission")
        # the grain is looked at in this run's quarter only: the quarter before holds the rows the
        # last publish checked in its file
        (grain,) = [s for s in statements if s.startswith("select 'dim_") or " as t, * from (" in s][-1:]
        for table in ("fct_submission", "fct_submission_value"):
            (part,) = [p for p in grain.split(" union all ") if p.startswith(f"select '{table}' as t")]
            assert "'2024-Q2'" in part and "'2024-Q1'" not in part, part
    else:  # copied: the slices of this run only
        assert copies == [str(target)] and target.stat().st_ino != first_file
        assert not [s for s in deletes if "'2024-Q1'" in s]
    full = tmp_path / "full" / "cchc.duckdb"
    publishing.publish(work, full, run_id="full", incremental=False)
    assert _published(target) == _published(full)
