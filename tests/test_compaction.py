"""Checkpoints without vacuum, and the compaction that reclaims deleted rows instead
(pipelines.warehouse: VACUUM_TASKS, compact, close_after_writes; the publish's copy)."""

import duckdb

from pipelines import warehouse
from pipelines.warehouse import Warehouse, close_after_writes, compact

ROW_GROUP = 122_880  # DuckDB's rows per row group


def _blocks(con, table: str, row_group: int) -> set[int]:
    return {
        b
        for (b,) in con.execute(
            f"select distinct block_id from pragma_storage_info('{table}') where row_group_id = $g and block_id >= 0",
            {"g": row_group},
        ).fetchall()
    }


def _stored(con, table: str, catalog: str | None = None) -> int:
    return con.execute(
        "select estimated_size from duckdb_tables() where table_name = $t and database_name = coalesce($c, current_database())",
        {"t": table, "c": catalog},
    ).fetchone()[0]


def _years(con, catalog: str = "") -> None:
    """A year-partitioned table of four row groups, a year's rows after another's (as the models append them)."""
    con.execute(
        f"create table {catalog}facts as select range // 100000 + 2021 as period_year, range as n, 'agency ' || (range % 150) as agency "
        "from range(400000)"
    )


def test_a_checkpoint_leaves_the_other_row_groups_of_a_table_as_they_are(tmp_path):
    """Rewriting some of a table's rows rewrote its row groups at the next checkpoint, DuckDB's vacuum
    merging those with deleted rows and the ones after them: ten years of history made the
    checkpoints of a new quarter 5-7 times slower. The working file's connections do not vacuum; DuckDB left to itself does
    (so the check means something)."""
    for how in ("plain", "working"):
        path = tmp_path / f"{how}.duckdb"
        con = duckdb.connect(str(path)) if how == "plain" else Warehouse(path).open()
        try:
            _years(con)
            con.execute("checkpoint")
            first = _blocks(con, "facts", 0)
            # two years' rows mostly rewritten (their agencies' groups changed): deleted, then appended again
            con.execute("create temp table again as select * from facts where period_year < 2023 and n % 5 <> 0")
            con.execute("delete from facts where period_year < 2023 and n % 5 <> 0")
            con.execute("insert into facts select * from again")
            con.execute("checkpoint")
            if how == "working":
                assert con.execute("select current_setting('max_vacuum_tasks')").fetchone() == (warehouse.VACUUM_TASKS,) == (0,)
                assert _blocks(con, "facts", 0) == first  # the first row group stays where it was
            else:
                assert _blocks(con, "facts", 0) != first  # vacuum merged it with the next and rewrote it
        finally:
            con.close()


def test_a_table_whose_deleted_rows_piled_up_is_rewritten_with_the_same_rows(tmp_path):
    con = Warehouse(tmp_path / "w.duckdb").open()
    try:
        _years(con)
        con.execute("create table small as select range as n from range(1000)")
        con.execute("create table keyed (n integer primary key)")
        con.execute(f"insert into keyed select range from range({2 * ROW_GROUP})")
        con.execute("comment on table facts is 'the facts'")
        con.execute("comment on column facts.n is 'a number'")
        con.execute("checkpoint")
        assert compact(con) == {}  # nothing deleted yet
        con.execute("delete from facts where n % 4 <> 0 and period_year < 2024")  # 225,000 of 400,000 rows
        con.execute("delete from small where n % 2 = 0")
        con.execute(f"delete from keyed where n < {ROW_GROUP + 1000}")
        con.execute("checkpoint")
        before = con.execute("select * from facts").fetchall()  # in the table's order
        stored = _stored(con, "facts")
        assert stored > len(before) + ROW_GROUP  # the deleted rows are still stored
        assert compact(con) == {"facts": stored - len(before)}  # not the small table, nor the keyed one
        con.execute("checkpoint")
        assert con.execute("select * from facts").fetchall() == before
        assert _stored(con, "facts") == len(before)
        assert con.execute("select comment from duckdb_tables() where table_name = 'facts'").fetchone() == ("the facts",)
        assert con.execute(
            "select comment from duckdb_columns() where table_name = 'facts' and column_name = 'n'"
        ).fetchone() == ("a number",)
        assert con.execute("select count(*) from keyed").fetchone() == (ROW_GROUP - 1000,)
        assert compact(con) == {}  # once is enough
        # under the share: left as it is
        con.execute("delete from facts where period_year = 2024 and n % 2 = 0")
        con.execute("checkpoint")
        assert compact(con) == {}
    finally:
        con.close()


def test_closing_after_a_run_compacts_the_working_file(tmp_path):
    path = tmp_path / "w.duckdb"
    con = Warehouse(path).open()
    _years(con)
    con.execute("checkpoint")
    con.execute("delete from facts where n % 4 <> 0")  # in every row group: none dropped whole
    close_after_writes(con)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from facts").fetchone() == (100_000,)
        assert _stored(con, "facts") == 100_000


def _working_with_values(con, catalog) -> None:
    """A working database with the catalog's dimensions and a fact table of 5,000 rows of one quarter."""
    from pipelines import steps

    steps.publish_dimensions(con, catalog)
    con.execute(
        "create table fct_test_values as select 's' || range as submission_id, '2023-Q1' as partition_key, "
        "range::double as value from range(5000)"
    )


def test_a_publish_compacts_the_copy_it_writes(tmp_path, catalog, monkeypatch):
    """The published copy keeps the rows earlier publishes deleted too: a table where they piled up
    is rewritten in the publish's transaction (here one the publish itself leaves as it is, its rows
    unchanged), and the analysts' rows are the working file's."""
    import os

    from pipelines import publish as publishing

    monkeypatch.setattr(warehouse, "COMPACT_MIN_ROWS", 1000)
    target = tmp_path / "pub" / "cchc.duckdb"
    with Warehouse(tmp_path / "work" / "w.duckdb").connect() as con:
        _working_with_values(con, catalog)
        publishing.publish(con, target, run_id="first")
        # the copy's table as many publishes' deletes and inserts leave it: most rows written twice
        with duckdb.connect(str(target), config={"max_vacuum_tasks": 0}) as copy:
            copy.execute("create temp table keep as select * from fct_test_values")
            copy.execute("delete from fct_test_values where value < 4000")
            copy.execute("insert into fct_test_values select * from keep where value < 4000")
            copy.execute("checkpoint")
            stored = _stored(copy, "fct_test_values")
        assert stored >= 9000
        stat = os.stat(target)  # as if this database had written it so: the next publish starts from it
        con.execute("update published_file set size_bytes = $s, mtime_ns = $m", {"s": stat.st_size, "m": stat.st_mtime_ns})
        reclaimed: dict = {}
        original = publishing.compact
        monkeypatch.setattr(publishing, "compact", lambda *a, **k: reclaimed.update(original(*a, **k)) or reclaimed)
        publishing.publish(con, target, run_id="second")
        assert reclaimed == {"fct_test_values": stored - 5000}
    with duckdb.connect(str(target), read_only=True) as copy:
        assert copy.execute("select count(*) from publish_log").fetchone() == (2,)  # the copy was the base
        assert copy.execute("select count(*), sum(value) from fct_test_values").fetchone() == (5000, sum(range(5000)))
        assert _stored(copy, "fct_test_values") == 5000


def test_a_slice_written_again_whole_is_left_to_the_checkpoint(tmp_path):
    """A year's rows written again whole (a new quarter's year tables) leave row groups whose rows are
    all deleted: the checkpoint drops them, so a compaction counted after it finds little to do,
    where one counted before would have rewritten the table."""
    con = Warehouse(tmp_path / "w.duckdb").open()
    try:
        _years(con)
        con.execute("checkpoint")
        con.execute("create temp table again as select * from facts where period_year < 2023")
        con.execute("delete from facts where period_year < 2023")
        con.execute("insert into facts select * from again")
        assert _stored(con, "facts") - 400_000 >= 200_000  # before the checkpoint: every deleted row counted
        con.execute("checkpoint")
        assert _stored(con, "facts") - 400_000 < ROW_GROUP  # the first row group, all deleted, dropped
        assert compact(con) == {}
    finally:
        con.close()


def _row_groups(con, table: str) -> list[int]:
    """The stored rows of each of a table's row groups, in order."""
    return [
        n
        for (n,) in con.execute(
            f"select sum(count) from pragma_storage_info('{table}') where column_path = '[0, 0]' group by row_group_id "
            "order by row_group_id"
        ).fetchall()
    ]


def _agencies(con, rows: int) -> None:
    """A year's table of 150 agencies' rows, written at once (a first run)."""
    con.execute(
        f"create table facts as select 2021 as period_year, range as n, 'agency ' || (range % 150) as agency from range({rows})"
    )


def _rerun(con, table: str, group: int) -> None:
    """What a re-run does to a table: one agency's rows deleted and written again, then a checkpoint
    (the run's close, or the publish's)."""
    con.execute(f"delete from {table} where agency = 'agency {group}'")
    con.execute(f"insert into {table} select 2021, {1_000_000 + group}, 'agency {group}' from range(75)")
    con.execute("checkpoint")


def test_the_small_row_groups_re_runs_leave_are_merged(tmp_path):
    """Each re-run left one more row group of an agency's rows in every table it touched, never merged
    (checkpoints do not vacuum): after 120 re-runs at 1,000 workbooks, 63 row groups per table and a
    re-run a second slower. Past FRAGMENTS_KEPT of them they are merged; the large row group stays
    where it was, and the rows, the comments and a keyed table are as they were."""
    con = Warehouse(tmp_path / "w.duckdb").open()
    try:
        _agencies(con, 60000)
        con.execute("comment on table facts is 'the facts'")
        con.execute("create table keyed (n integer primary key, agency varchar)")
        con.execute("checkpoint")
        first = _blocks(con, "facts", 0)
        for group in range(warehouse.FRAGMENTS_KEPT):
            _rerun(con, "facts", group)
        assert len(_row_groups(con, "facts")) == 1 + warehouse.FRAGMENTS_KEPT  # one per re-run
        assert warehouse.merge_fragments(con) == {}  # not yet past the limit
        _rerun(con, "facts", warehouse.FRAGMENTS_KEPT)
        before = sorted(con.execute("select * from facts").fetchall())
        assert warehouse.merge_fragments(con) == {"facts": warehouse.FRAGMENTS_KEPT + 1}
        con.execute("checkpoint")
        assert _row_groups(con, "facts") == [60000, 75 * (warehouse.FRAGMENTS_KEPT + 1)]
        assert _blocks(con, "facts", 0) == first  # the large row group was not rewritten
        assert sorted(con.execute("select * from facts").fetchall()) == before
        assert con.execute("select comment from duckdb_tables() where table_name = 'facts'").fetchone() == ("the facts",)
        assert warehouse.merge_fragments(con) == {}  # once is enough
    finally:
        con.close()


def test_a_table_of_small_row_groups_only_is_merged_whole(tmp_path):
    """A small table (a quarter's submissions) is one small row group to begin with: it is merged with
    the others, into one."""
    con = Warehouse(tmp_path / "w.duckdb").open()
    try:
        _agencies(con, 1000)
        con.execute("checkpoint")
        for group in range(warehouse.FRAGMENTS_KEPT):
            _rerun(con, "facts", group)
        before = sorted(con.execute("select * from facts").fetchall())
        assert warehouse.merge_fragments(con) == {"facts": warehouse.FRAGMENTS_KEPT + 1}
        con.execute("checkpoint")
        assert _row_groups(con, "facts") == [len(before)]
        assert sorted(con.execute("select * from facts").fetchall()) == before
    finally:
        con.close()


def test_closing_after_runs_merges_the_small_row_groups(tmp_path):
    path = tmp_path / "w.duckdb"
    con = Warehouse(path).open()
    _agencies(con, 5000)
    con.execute("checkpoint")
    for group in range(warehouse.FRAGMENTS_KEPT + 1):
        _rerun(con, "facts", group)
    before = sorted(con.execute("select * from facts").fetchall())
    close_after_writes(con)
    with duckdb.connect(str(path), read_only=True) as con:
        assert _row_groups(con, "facts") == [len(before)]
        assert sorted(con.execute("select * from facts").fetchall()) == before


def test_publishes_keep_the_published_copy_in_few_row_groups_and_a_bloated_file_is_written_anew(tmp_path, catalog):
    """Each publish appends a row group to each table it changes (and to the publish log): past
    FRAGMENTS_KEPT they are merged in the copy before it is renamed. A published file mostly of
    free blocks (left by the row groups of earlier versions) is written anew instead of copied,
    with the same rows."""
    from pipelines import publish as publishing

    target = tmp_path / "pub" / "cchc.duckdb"
    with Warehouse(tmp_path / "work" / "w.duckdb").connect() as con:
        _working_with_values(con, catalog)
        publishing.publish(con, target, run_id="first", partitions=("2023-Q1",))
        for run in range(3 * warehouse.FRAGMENTS_KEPT):
            con.execute("update fct_test_values set value = value + 1 where submission_id = $s", {"s": f"s{run}"})
            publishing.publish(con, target, run_id=f"again {run}", partitions=("2023-Q1",))
            with duckdb.connect(str(target), read_only=True) as copy:
                assert copy.execute("select count(*) from publish_log").fetchone() == (run + 2,)  # the copy was the base
                for table in ("fct_test_values", "publish_log"):
                    small = [n for n in _row_groups(copy, table) if n < warehouse.FRAGMENT_ROWS]
                    assert len(small) <= warehouse.FRAGMENTS_KEPT, (table, run)
        expected = con.execute("select sum(value) from fct_test_values").fetchone()
        # as an earlier version left it: most of the published file free blocks
        with duckdb.connect(str(target), config={"max_vacuum_tasks": 0}) as copy:
            copy.execute(
                "create table ballast as select range as n, md5(range::varchar) || md5((-range)::varchar) as s from range(1000000)"
            )
            copy.execute("checkpoint")
            # a table written after it (one no publish writes): the blocks at the file's end stay in use
            copy.execute("create table tail_rows as select range as n from range(1000)")
            copy.execute("checkpoint")
            copy.execute("drop table ballast")
            copy.execute("checkpoint")
            free, used = copy.execute("select free_blocks, used_blocks from pragma_database_size()").fetchone()
        assert free > max(used, publishing.FREE_BLOCKS_KEPT)
        bloated = target.stat().st_size
        import os

        stat = os.stat(target)  # as if this database had written it so
        con.execute("update published_file set size_bytes = $s, mtime_ns = $m", {"s": stat.st_size, "m": stat.st_mtime_ns})
        con.execute("update fct_test_values set value = value + 1 where submission_id = 's4999'")
        publishing.publish(con, target, run_id="anew", partitions=("2023-Q1",))
        assert target.stat().st_size < bloated / 2
    with duckdb.connect(str(target), read_only=True) as copy:
        assert copy.execute("select sum(value) from fct_test_values").fetchone() == (expected[0] + 1,)
        assert copy.execute("select count(*) from publish_log").fetchone()[0] >= 2
        # written anew, as a first publish: only the working database's tables
        assert copy.execute("select count(*) from duckdb_tables() where table_name = 'tail_rows'").fetchone() == (0,)
