"""Raw folder scanning, file-name agencies, receipt register, and first-seen times that never move."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import ingest, steps
from pipelines.periods import LOCAL_TZ
from pipelines.warehouse import Warehouse
from tests.conftest import make_form


def test_scan_skips_lock_hidden_and_quarantine(tmp_path):
    names = (
        "2024-Q1/a.xlsx",
        "2024-Q1/~$a.xlsx",
        ".hidden/b.xlsx",
        ".hidden/deeper/b2.xlsx",
        "quarantine/c.xlsx",
        "2024-Q1/quarantine/c2.xlsx",
        "external/e.xlsx",  # the external indices' folder (top level only)
        "2024-Q1/external/f.xlsm",
        "notes.txt",
        "d.XLSX",
    )
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "2024-H1").symlink_to(tmp_path / "2024-Q1", target_is_directory=True)  # a folder link is not followed
    assert [p.relative_to(tmp_path).as_posix() for p in ingest.scan_raw_folder(tmp_path)] == [
        "2024-Q1/a.xlsx",
        "2024-Q1/external/f.xlsm",
        "d.XLSX",
    ]


@pytest.mark.parametrize("root", ["raw", "raw/", "./raw"])
def test_the_raw_folder_s_files_come_in_path_order(tmp_path, monkeypatch, root):
    """Sorted as Path objects sort (part by part: "a/b" before "a-b", though "-" < "/" as text),
    while the scan sorts their names; and named as Path names them (the folder index's keys)."""
    names = ["a/b.xlsx", "a-b.xlsx", "a.b/c.xlsx", "A/x.xlsx", "a/a/z.xlsx", "a0.xlsx", "Quý I/b.xlsx", "quý i/a.xlsx"]
    for name in names:
        (tmp_path / "raw" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "raw" / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    found = ingest.scan_raw_folder(Path(root) if root != "./raw" else root)
    assert found == sorted(Path("raw") / name for name in names)
    assert [str(p) for p in found] == [os.fspath(Path(str(p))) for p in found]


def test_filename_agency_prefers_the_longest_code():
    codes = ["TD-XA-LICHHOITHUONG", "TD-TT-LICHHOITHUONG", "TD-UBND"]
    assert ingest.filename_agency(Path("TD-XA-LICHHOITHUONG_2024-Q1.xlsx"), codes) == "TD-XA-LICHHOITHUONG"
    assert ingest.filename_agency(Path("bao cao td-ubnd quy 1.xlsx"), codes) == "TD-UBND"
    assert ingest.filename_agency(Path("TD-UBNDX.xlsx"), codes) is None


def _filename_agency_pairwise(name: str, codes: list[str]) -> str | None:
    """filename_agency as first written: every bounded piece of the name looked up, the longest kept."""
    lookup = ingest.code_lookup(codes)
    stem = "_" + ingest.clean(ingest._stem(name)).upper().replace(" ", "_") + "_"
    starts = [i for i in range(1, len(stem)) if not stem[i - 1].isalnum()]
    ends = [j for j in range(1, len(stem)) if not stem[j].isalnum()]
    best = None
    for i in starts:
        for j in ends:
            if j > i and (best is None or j - i > len(best)) and stem[i:j] in lookup:
                best = lookup[stem[i:j]]
    return best


_CODE_PARTS = st.sampled_from(["TD", "XA", "UBND", "LIEUTU", "Q1", "2024", "ĐÔNG", "x", "TT", "TD1"])
_CODES = st.lists(st.lists(_CODE_PARTS, min_size=1, max_size=4).map("-".join), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    codes=_CODES,
    pieces=st.lists(st.one_of(_CODE_PARTS, st.sampled_from(["-", "_", " ", ".", "-x", "bao cao", "Quý I", "½"])), max_size=12),
)
def test_filename_agency_finds_what_looking_up_every_piece_finds(codes, pieces):
    """The longest code standing in the name, bounded by non-alphanumeric characters; a tie goes
    to the first in the name (the pairwise form's answer, on names made of codes' parts)."""
    for name in ("".join(pieces) + ".xlsx", "-".join(pieces) + "_2024-Q1.xlsx", " ".join(pieces)):
        assert ingest.filename_agency(name, codes) == _filename_agency_pairwise(name, codes), name


def test_folder_period(tmp_path):
    assert ingest.folder_period(tmp_path / "2024-H1" / "a.xlsx", tmp_path).code == "2024-H1"
    assert ingest.folder_period(tmp_path / "Quý III 2024" / "x" / "a.xlsx", tmp_path).code == "2024-Q3"  # nearest period folder
    assert ingest.folder_period(tmp_path / "a.xlsx", tmp_path) is None


def test_register_times_are_local_unless_zoned(tmp_path):
    register = tmp_path / "receipts.csv"
    register.write_text("file_name,received_at\na.xlsx,2024-03-11T23:59:00\nb.xlsx,2024-03-11T16:59:00+00:00\n", encoding="utf-8")
    got = ingest.load_receipt_register(register)
    assert got["a.xlsx"].received_at == dt.datetime(2024, 3, 11, 23, 59, tzinfo=LOCAL_TZ)
    assert got["b.xlsx"].received_at == got["a.xlsx"].received_at
    assert ingest.load_receipt_register(tmp_path / "missing.csv") == {}


def test_a_register_row_whose_time_is_not_one_is_skipped_and_said(tmp_path):
    """A mistyped time never stops a quarter: its row is skipped (an earlier valid row of the same
    file stands), and the problem names the register, the row, the column and the text."""
    register = tmp_path / "receipts.csv"
    register.write_text(
        "file_name,received_at\na.xlsx,2024-04-01T08:00\nb.xlsx,ngày 8 tháng 4\na.xlsx,8/4/2024 8:00\nc.xlsx,2024-04-03T08:00\n",
        encoding="utf-8",
    )
    got = {key: receipt.received_at.day for key, receipt in ingest._read_receipt_register(register).items()}
    assert got == {"a.xlsx": 1, "c.xlsx": 3}
    problems = ingest.receipt_register_problems(register)
    assert len(problems) == 2
    assert problems[0].startswith(f"{register}, dòng/row 3, cột/column received_at: 'ngày 8 tháng 4' không phải")
    assert "dòng/row 4" in problems[1] and "'8/4/2024 8:00'" in problems[1] and "the row is skipped" in problems[1]
    register.write_text("file_name,received_at\na.xlsx,2024-04-01T08:00\n", encoding="utf-8")
    ingest._read_receipt_register(register)
    assert ingest.receipt_register_problems(register) == []  # the file as read last


def test_a_grown_register_is_read_from_where_it_was_read_last(tmp_path, monkeypatch):
    """Rows added at the end of a register are read on top of what the earlier rows gave: the same
    receipts and problems (with the rows' line numbers) as reading it whole, without reading it
    whole. A register changed anywhere else, saved in another encoding or holding quoted values is
    read whole."""
    register = tmp_path / "receipts.csv"
    first = "\ufefffile_name,received_at\r\na.xlsx,2024-04-01T08:00\r\nb.xlsx,ngày 2/4\r\n"
    register.write_text(first, encoding="utf-8")
    wholes = []
    whole = ingest._read_register_whole
    monkeypatch.setattr(ingest, "_read_register_whole", lambda path, data: wholes.append(data) or whole(path, data))

    def days(path=register):
        return {key: receipt.received_at.day for key, receipt in ingest._read_receipt_register(path).items()}

    assert days() == {"a.xlsx": 1} and len(wholes) == 1
    assert days() == {"a.xlsx": 1} and len(wholes) == 1  # the same bytes: as read
    with open(register, "a", encoding="utf-8", newline="") as handle:
        handle.write("c.xlsx,2024-04-03T08:00\r\na.xlsx,2024-04-04T08:00\r\nd.xlsx,4/4/2024\r\ne.xlsx,2024-04-05T08:00+07:00\r\n")
    assert days() == {"a.xlsx": 4, "c.xlsx": 3, "e.xlsx": 5} and len(wholes) == 1  # only the rows added were read
    grown = ingest.receipt_register_problems(register)
    ingest._REGISTER_READS.clear()
    assert days() == {"a.xlsx": 4, "c.xlsx": 3, "e.xlsx": 5} and len(wholes) == 2  # read whole: the same
    assert grown == ingest.receipt_register_problems(register)
    assert [p.split(",")[1] for p in grown] == [" dòng/row 3", " dòng/row 6"]

    register.write_text(first.replace("2024-04-01", "2024-04-09"), encoding="utf-8")  # an earlier row changed
    assert days() == {"a.xlsx": 9} and len(wholes) == 3
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('file_name,received_at\n"a, b.xlsx",2024-04-01T08:00\n', encoding="utf-8")
    assert days(quoted) == {"a, b.xlsx": 1}
    with open(quoted, "a", encoding="utf-8") as handle:
        handle.write("c.xlsx,2024-04-03T08:00\n")
    assert days(quoted) == {"a, b.xlsx": 1, "c.xlsx": 3} and len(wholes) == 5  # quoted: read whole each time
    with open(register, "a", encoding="utf-8") as handle:
        handle.write("f.xlsx,2024-04-06T08:00")  # a last line still being written
    assert days()["f.xlsx"] == 6 and len(wholes) == 4 + 1 + 1
    with open(register, "ab") as handle:
        handle.write("\ng.xlsx,2024-04-07T08:00,Hà\n".encode("cp1258"))  # another encoding now
    assert days()["g.xlsx"] == 7 and len(wholes) == 7


_TONES = "\u0300\u0301\u0303\u0309\u0323"  # the tone marks code page 1258 writes apart from their letter


def _windows_vietnamese(text: str) -> bytes:
    """Text as Windows writes it in code page 1258: a letter with a tone mark as its base letter (â,
    ơ, ... precomposed where the code page has them) followed by the combining tone mark."""
    import unicodedata

    out = []
    for ch in unicodedata.normalize("NFC", text):
        try:
            out.append(ch.encode("cp1258"))
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tone = next(c for c in parts if c in _TONES)
            base = unicodedata.normalize("NFC", parts.replace(tone, ""))
            out.append(base.encode("cp1258") + tone.encode("cp1258"))
    return b"".join(out)


@pytest.mark.parametrize(
    ("encoding", "separator"),
    [("utf-8-sig", ","), ("cp1258", ","), ("cp1258", ";"), ("utf-16", "\t")],
    ids=["utf-8", "Vietnamese Windows", "semicolons", "Excel Unicode text"],
)
def test_a_register_is_read_as_excel_saves_it(tmp_path, encoding, separator):
    """Excel's CSV on a Vietnamese Windows (code page 1258, commas or semicolons) and its "Unicode
    text" (UTF-16, tabs), with a Vietnamese column beside the two the register needs."""
    register = tmp_path / "receipts.csv"
    rows = [["file_name", "Người nhận", "received_at"], ["a.xlsx", "Nguyễn Thị Hà", "2024-04-02T08:00"]]
    text = "\r\n".join(separator.join(row) for row in rows) + "\r\n"
    register.write_bytes(_windows_vietnamese(text) if encoding == "cp1258" else text.encode(encoding))
    got = ingest._read_receipt_register(register)
    assert {key: r.received_at.day for key, r in got.items()} == {"a.xlsx": 2}
    assert ingest.receipt_register_problems(register) == []


def test_a_register_without_its_columns_is_said_and_not_used(tmp_path):
    register = tmp_path / "receipts.csv"
    register.write_text("Tên tệp,Thời gian nhận\na.xlsx,2024-04-02T08:00\n", encoding="utf-8")
    assert ingest._read_receipt_register(register) == {}
    (problem,) = ingest.receipt_register_problems(register)
    assert problem.startswith(f"{register}, dòng/row 1: sổ cần cột received_at") and "Tên tệp, Thời gian nhận" in problem
    assert "the register needs a received_at column" in problem


def test_a_register_is_read_by_column_name_as_people_keep_it(tmp_path):
    """The register's columns are found by name, in any order, with a byte-order mark, blank lines,
    short rows and spaces around values; a content hash goes before the file name; a row without a
    key or a time is skipped; a later row for the same key wins; a column given twice: its last."""
    register = tmp_path / "receipts.csv"
    register.write_text(
        "\ufeffreceived_at,file_name,content_hash,received_at\n"
        "2024-01-01,a.xlsx,,2024-04-01T08:00\n"
        "\n"
        "2024-01-01, b.xlsx ,,2024-04-02T08:00 \n"
        "2024-01-01,c.xlsx,abc123,2024-04-03T08:00\n"
        "2024-01-01,d.xlsx\n"
        "2024-01-01,,,2024-04-04T08:00\n"
        "2024-01-01,a.xlsx,,2024-04-05T08:00\n",
        encoding="utf-8",
    )
    got = {key: receipt.received_at.day for key, receipt in ingest.load_receipt_register(register).items()}
    assert got == {"a.xlsx": 5, "b.xlsx": 2, "abc123": 3}


def test_first_seen_time_is_never_overwritten(tmp_path, catalog):
    raw = tmp_path / "raw"
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    first = dt.datetime(2024, 3, 5, 9, 0, tzinfo=LOCAL_TZ)
    later = dt.datetime(2024, 5, 1, 9, 0, tzinfo=LOCAL_TZ)
    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", first, None)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", later, None)  # a re-run weeks later
        (received, source, loaded) = con.execute("select received_at, received_source, loaded_at from raw_submission").fetchone()
        (seen,) = con.execute("select first_seen_at from raw_file_log").fetchone()
    assert received == first and seen == first and source == "first_seen"
    assert loaded == later


def test_the_quarter_is_marked_for_the_next_publish_with_its_raw_write(tmp_path, catalog, monkeypatch):
    """The raw step marks its quarter pending (the next publish carries it) in the transaction of its
    write: a write that fails leaves neither the rows nor the mark; the next one leaves both."""
    from pipelines import warehouse
    from pipelines.models import ModelRun
    from pipelines.publish import pending_partitions

    raw = tmp_path / "raw"
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    now = dt.datetime(2024, 4, 5, 9, 0, tzinfo=LOCAL_TZ)
    append_frame = warehouse.append_frame

    def disk_full(*_args):
        raise OSError("disk full")

    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        run = ModelRun(con, "2024-Q1", now, catalog_loader=lambda: catalog, raw_dir=raw)
        monkeypatch.setattr(warehouse, "append_frame", disk_full)
        with pytest.raises(OSError, match="disk full"):
            steps.read_workbooks(run)
        assert pending_partitions(con) == set()
        assert con.execute("select count(*) from raw_submission").fetchone() == (0,)
        monkeypatch.setattr(warehouse, "append_frame", append_frame)
        steps.read_workbooks(run)
        assert pending_partitions(con) == {"2024-Q1"}
        assert con.execute("select count(*) from raw_submission").fetchone() == (1,)


def test_a_re_run_through_the_folder_index_keeps_every_unchanged_workbook(tmp_path, catalog, monkeypatch):
    """With the parse cache and the folder index, a re-run in another time zone reads no workbook
    again (the first-seen and receipt times on record compare equal as instants); a receipt
    registered since makes that workbook's row written again, with the registered time."""
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    for code in ("TD-XA-LIEUTU", "TD-XA-TAIVAN"):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", {"HSO.01": 10})
    first = dt.datetime(2024, 4, 5, 9, 0, tzinfo=LOCAL_TZ)
    later = dt.datetime(2024, 4, 6, 2, 0, tzinfo=dt.UTC)
    read: list = []
    content_records = ingest.content_records
    monkeypatch.setattr(ingest, "content_records", lambda paths, *a, **k: read.extend(paths) or content_records(paths, *a, **k))
    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", first, None, cache)
        assert len(read) == 2
        read.clear()
        steps.ingest_partition(con, catalog, raw, "2024-Q1", later, None, cache)
        assert read == []
        rows = con.execute("select received_at, received_source, loaded_at from raw_submission").fetchall()
        assert rows == [(first, "first_seen", later)] * 2
        register = tmp_path / "receipts.csv"
        register.write_text("file_name,received_at\nTD-XA-TAIVAN_2024-Q1.xlsx,2024-04-03T16:30:00+07:00\n", encoding="utf-8")
        steps.ingest_partition(con, catalog, raw, "2024-Q1", later, register, cache)
        assert [p.name for p in read] == ["TD-XA-TAIVAN_2024-Q1.xlsx"]
        read.clear()
        steps.ingest_partition(con, catalog, raw, "2024-Q1", later, register, cache)
        assert read == []  # the registered time on record compares equal too
        got = dict(con.execute("select filename_agency_code, received_at from raw_submission").fetchall())
    assert got == {"TD-XA-LIEUTU": first, "TD-XA-TAIVAN": dt.datetime(2024, 4, 3, 16, 30, tzinfo=LOCAL_TZ)}


def test_a_re_run_works_out_the_file_fields_of_the_changed_workbooks_only(tmp_path, catalog, monkeypatch):
    """The file fields (folder period, the agency the name names, receipt) of a workbook on record
    under the same content, path and slice are taken as recorded while the register, the units'
    codes and the raw folder are unchanged: the register is not even read. A changed workbook, a
    changed register or a changed list of codes has them worked out again."""
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    for code in ("TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-CHUAHA"):
        make_form(raw / "2024-Q1" / f"{code}_2024-Q1.xlsx", code, "Quý I/2024", {"HSO.01": 10})
    now = dt.datetime(2024, 4, 5, 9, 0, tzinfo=LOCAL_TZ)
    register = tmp_path / "receipts.csv"
    register.write_text("file_name,received_at\nTD-XA-TAIVAN_2024-Q1.xlsx,2024-04-03T16:30:00+07:00\n", encoding="utf-8")
    worked: list[str] = []
    loaded: list[Path] = []
    file_fields, load = ingest.file_fields, ingest.load_receipt_register
    monkeypatch.setattr(ingest, "file_fields", lambda path, *a: worked.append(Path(path).name) or file_fields(path, *a))
    monkeypatch.setattr(ingest, "load_receipt_register", lambda path: loaded.append(path) or load(path))

    def rows(con) -> dict:
        return {
            name: (agency, received, source)
            for name, agency, received, source in con.execute(
                "select file_name, filename_agency_code, received_at, received_source from raw_submission"
            ).fetchall()
        }

    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache)
        assert len(worked) == 3 and len(loaded) == 1
        before = rows(con)
        assert before["TD-XA-TAIVAN_2024-Q1.xlsx"][2] == "register"
        worked.clear(), loaded.clear()
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache)
        assert worked == [] and loaded == []  # nothing changed: nothing worked out, the register not read
        assert rows(con) == before
        make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 11})
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache)
        assert worked == ["TD-XA-LIEUTU_2024-Q1.xlsx"] and len(loaded) == 1
        worked.clear(), loaded.clear()
        register.write_text("file_name,received_at\nTD-XA-CHUAHA_2024-Q1.xlsx,2024-04-02T08:00:00+07:00\n", encoding="utf-8")
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache)
        assert sorted(worked) == sorted(before) and len(loaded) == 1  # a new register: every workbook's receipt
        after = rows(con)
        assert after["TD-XA-CHUAHA_2024-Q1.xlsx"][2] == "register" and after["TD-XA-TAIVAN_2024-Q1.xlsx"][2] == "first_seen"
        worked.clear()
        reporters = [unit.code for unit in catalog.reporters if unit.code != "TD-XA-TAIVAN"]
        ingest.sync_raw_tables(
            con, raw, "2024-Q1", reporters, ingest.load_receipt_register(register), now, cache, None,
            ingest.register_print(register),
        )  # fmt: skip
        assert sorted(worked) == sorted(before)  # other codes: every name looked at again
        assert rows(con)["TD-XA-TAIVAN_2024-Q1.xlsx"][0] is None  # no longer a reporting unit's code


def test_sensor_sees_new_and_changed_files_once(tmp_path):
    import os

    from pipelines.sensors import landed_files, seen_of

    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    path = make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    entries = ingest.index_entries(raw, cache)
    found = landed_files(entries, {})
    assert list(found) == [str(path)] and found[str(path)] == entries[str(path)]
    seen = seen_of(entries)
    assert landed_files(ingest.index_entries(raw, cache), seen) == {}  # nothing new on the next tick
    other = make_form(raw / "2024-Q1" / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", {"HSO.01": 5})
    make_form(path, "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 12})  # the agency overwrites its file
    os.utime(path, ns=(1, 10**18))
    assert list(landed_files(ingest.index_entries(raw, cache), seen)) == [str(path), str(other)]


def test_a_link_to_a_file_outside_the_raw_folder_is_never_read(tmp_path):
    from pipelines.ingest import scan_raw_folder

    outside = tmp_path / "secret.xlsx"
    outside.write_bytes(b"PK\x03\x04")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "inside.xlsx").write_bytes(b"PK\x03\x04")
    (raw / "link.xlsx").symlink_to(outside)
    (raw / "inner-link.xlsx").symlink_to(raw / "inside.xlsx")
    assert [p.name for p in scan_raw_folder(raw)] == ["inner-link.xlsx", "inside.xlsx"]


def test_the_sensor_keeps_what_it_saw_in_the_work_folder_and_forgets_files_that_left(tmp_path):
    """The cursor names the sensor's state, kept in the work folder (Dagster keeps each tick's
    cursor for good: it must not grow with the folder). A file moved away is forgotten (brought back,
    it lands again); the state of the tick before is kept in case this tick is not recorded; the
    workbooks the sensor read are in the runs' parse cache."""
    from dagster import DagsterInstance, build_sensor_context

    from pipelines.definitions import build_definitions
    from pipelines.sensors import raw_folder_sensor

    raw = tmp_path / "raw"
    first = make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    defs = build_definitions({"CCHC_RAW_DIR": str(raw), "CCHC_DATABASE": str(tmp_path / "x.duckdb")})
    states = defs.resources["warehouse"].work_path.parent / "sensors"
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, resources=defs.resources, definitions=defs) as context:
        (request,) = raw_folder_sensor(context)
        assert request.partition_key == "2024-Q1" and request.tags["cchc/files"] == "1"
        one = context.cursor
        assert len(one) == 24 and [p.name for p in states.iterdir()] == [f"raw-folder-sensor.{one}.pickle"]
        assert list(defs.resources["warehouse"].parse_cache_dir.glob("*/folder-index.*/*.pickle"))
        assert str(raw_folder_sensor(context).skip_message) == "no new workbook in the raw folder"
        first.rename(raw / "archived.bak")  # moved away by the clerk
        second = make_form(raw / "2024-H1" / "TD-XA-LIEUTU_2024-H1.xlsx", "TD-XA-LIEUTU", "6 tháng đầu năm 2024", {"HSO.01": 20})
        assert [r.partition_key for r in raw_folder_sensor(context)] == ["2024-Q2"]
        two = context.cursor
        assert sorted(p.name for p in states.iterdir()) == sorted(f"raw-folder-sensor.{c}.pickle" for c in (one, two))
        (raw / "archived.bak").rename(first)  # brought back: it lands again
        assert [r.partition_key for r in raw_folder_sensor(context)] == ["2024-Q1"]
        assert sorted(p.name for p in states.iterdir()) == sorted(f"raw-folder-sensor.{c}.pickle" for c in (two, context.cursor))
        assert str(raw_folder_sensor(context).skip_message) == "no new workbook in the raw folder"
        assert len(context.cursor) == 24 and second.exists()


def test_the_sensor_reads_the_cursor_that_held_every_file_and_starts_again_without_its_state(tmp_path):
    """A cursor of the earlier kind ({path: "mtime_ns:size"}) is read as it is: only what changed since
    lands. A cursor whose state is gone (the work folder wiped), or a broken one: every workbook lands
    again, as after a reset."""
    import json
    import shutil

    from dagster import DagsterInstance, build_sensor_context

    from pipelines.definitions import build_definitions
    from pipelines.sensors import raw_folder_sensor

    raw = tmp_path / "raw"
    first = make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    second = make_form(raw / "2024-H1" / "TD-XA-LIEUTU_2024-H1.xlsx", "TD-XA-LIEUTU", "6 tháng đầu năm 2024", {"HSO.01": 20})
    earlier = {str(p): f"{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in (first, second)}
    earlier[str(second)] = "1:2"  # changed since
    defs = build_definitions({"CCHC_RAW_DIR": str(raw), "CCHC_DATABASE": str(tmp_path / "x.duckdb")})
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(
        instance=instance, resources=defs.resources, definitions=defs, cursor=json.dumps(earlier)
    ) as context:
        assert [r.partition_key for r in raw_folder_sensor(context)] == ["2024-Q2"]
        assert len(context.cursor) == 24
    shutil.rmtree(defs.resources["warehouse"].work_path.parent / "sensors")
    outside = tmp_path / "elsewhere.pickle"  # a cursor set by hand never names another file
    outside.write_bytes(b"not the sensor's")
    for cursor in (context.cursor, "{not json", json.dumps(["a list"]), "../../elsewhere", "0" * 23 + "/"):
        with build_sensor_context(instance=instance, resources=defs.resources, definitions=defs, cursor=cursor) as again:
            assert [r.partition_key for r in raw_folder_sensor(again)] == ["2024-Q1", "2024-Q2"]


def _raw_state(con) -> dict[str, list]:
    """Every raw row of both slices, without loaded_at (the time of the load itself)."""
    state = {}
    for table in ingest.RAW_TABLES:
        frame = con.execute(f"select * from {table} order by all").df()
        state[table] = frame.drop(columns=["loaded_at"], errors="ignore").astype(str).values.tolist()
    return state


def test_a_rerun_reads_and_writes_only_the_workbooks_that_changed(tmp_path, catalog, monkeypatch):
    """Unchanged workbooks keep their raw rows (neither parsed nor rewritten); a changed, a new and a
    removed workbook are brought in step; the result equals a rewrite from scratch."""
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    folder = raw / "2024-Q1"
    for agency in ("TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-DAIAN2"):
        make_form(folder / f"{agency}_2024-Q1.xlsx", agency, "Quý I/2024", {"HSO.01": 10, "HSO.02": 4})
    make_form(raw / "no-period.xlsx", "TD-UBND", "", {"HSO.01": 1}, report_date=None)  # the unassigned slice
    first = dt.datetime(2024, 3, 5, 9, 0, tzinfo=LOCAL_TZ)
    later = dt.datetime(2024, 4, 20, 9, 0, tzinfo=LOCAL_TZ)
    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", first, None, cache)
        con.execute(
            "update raw_value set note = 'untouched' where submission_id in (select submission_id from raw_submission where file_name like 'TD-XA-LIEUTU%')"
        )
        # one changed, one new, one removed
        make_form(folder / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", {"HSO.01": 12, "HSO.02": 4})
        make_form(folder / "TD-PHONG-TUPHAP_2024-Q1.xlsx", "TD-PHONG-TUPHAP", "Quý I/2024", {"HSO.01": 3})
        (folder / "TD-XA-DAIAN2_2024-Q1.xlsx").unlink()
        parsed = []
        original = ingest.read_workbook
        monkeypatch.setattr(ingest, "read_workbook", lambda path, *a: parsed.append(Path(path).name) or original(path, *a))
        counts = steps.ingest_partition(con, catalog, raw, "2024-Q1", later, None, cache)
        assert sorted(parsed) == ["TD-PHONG-TUPHAP_2024-Q1.xlsx", "TD-XA-TAIVAN_2024-Q1.xlsx"]
        assert counts["raw_submission"] == 3
        kept = con.execute(
            "select distinct note from raw_value join raw_submission using (submission_id) where file_name like 'TD-XA-LIEUTU%'"
        ).fetchall()
        assert kept == [("untouched",)]  # not rewritten
        assert {r[0] for r in con.execute("select distinct loaded_at from raw_submission").fetchall()} == {later}
        con.execute("update raw_value set note = '' where note = 'untouched'")  # as it was
        incremental = _raw_state(con)
        value = con.execute(
            "select v.value from raw_value as v join raw_submission as s using (submission_id) where s.file_name like 'TD-XA-TAIVAN%' and v.code = 'HSO.01'"
        ).fetchone()
        assert value == (12.0,)
    with Warehouse(tmp_path / "fresh.duckdb").connect() as con:  # from scratch, the same files
        steps.publish_dimensions(con, catalog)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", later, None, None)
        fresh = _raw_state(con)
    # first-seen times differ between the two databases (5/3 vs 20/4), the rows otherwise agree
    strip = lambda state: {t: [[c for c in row if not c.startswith("2024-0")] for row in rows] for t, rows in state.items()}  # noqa: E731
    assert strip(incremental) == strip(fresh)


def test_a_sync_says_per_slice_which_workbooks_it_wrote(tmp_path, catalog):
    """The groups a raw sync says it changed are per slice (what the models of each slice then
    compute): a quarter's changed workbook is not a change of the unassigned slice, and a workbook
    that moves from one slice to the other is a change of both."""
    from pipelines import incremental

    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    folder = raw / "2024-Q1"
    for agency in ("TD-XA-LIEUTU", "TD-XA-TAIVAN"):
        make_form(folder / f"{agency}_2024-Q1.xlsx", agency, "Quý I/2024", {"HSO.01": 10, "HSO.02": 4})
    make_form(raw / "no-period.xlsx", "TD-UBND", "", {"HSO.01": 1}, report_date=None)  # the unassigned slice
    now = dt.datetime(2024, 4, 20, 9, 0, tzinfo=LOCAL_TZ)
    quarter, unassigned = (incremental.slice_id({"partition_key": k}) for k in ("2024-Q1", ingest.UNASSIGNED))
    sids = "select file_name, submission_id from raw_submission"

    def sync() -> tuple[dict, tuple, tuple]:
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, None, cache)
        return (
            dict(con.execute(sids).fetchall()),
            incremental._WRITES[("raw_value", quarter)][2],
            incremental._WRITES[("raw_value", unassigned)][2],
        )

    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        first, _, _ = sync()
        make_form(folder / "TD-XA-TAIVAN_2024-Q1.xlsx", "TD-XA-TAIVAN", "Quý I/2024", {"HSO.01": 12, "HSO.02": 4})
        second, in_quarter, in_unassigned = sync()
        assert set(in_quarter) == {first["TD-XA-TAIVAN_2024-Q1.xlsx"], second["TD-XA-TAIVAN_2024-Q1.xlsx"]}
        assert in_unassigned == ()  # nothing left or entered the unassigned slice
        _, in_quarter, in_unassigned = sync()
        assert (in_quarter, in_unassigned) == ((), ())
        # a workbook moved out of its quarter's folder, its period left out: from the quarter to the unassigned slice
        (folder / "TD-XA-LIEUTU_2024-Q1.xlsx").unlink()
        make_form(raw / "TD-XA-LIEUTU.xlsx", "TD-XA-LIEUTU", "", {"HSO.01": 11, "HSO.02": 4}, report_date=None)
        third, in_quarter, in_unassigned = sync()
        assert in_quarter == (first["TD-XA-LIEUTU_2024-Q1.xlsx"],)
        assert in_unassigned == (third["TD-XA-LIEUTU.xlsx"],)
        slices = dict(con.execute("select file_name, partition_key from raw_submission").fetchall())
        assert slices["TD-XA-LIEUTU.xlsx"] == ingest.UNASSIGNED


def test_a_new_receipt_or_new_limits_bring_a_workbook_in_step(tmp_path, catalog):
    from pipelines.limits import ReadLimits

    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    make_form(raw / "2024-Q1" / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10})
    now = dt.datetime(2024, 3, 20, 9, 0, tzinfo=LOCAL_TZ)
    register = tmp_path / "receipts.csv"
    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache)
        assert con.execute("select received_source from raw_submission").fetchone() == ("first_seen",)
        register.write_text("file_name,received_at\nTD-XA-LIEUTU_2024-Q1.xlsx,2024-03-11T16:00:00\n", encoding="utf-8")
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache)
        assert con.execute("select received_source, received_at from raw_submission").fetchone() == (
            "register",
            dt.datetime(2024, 3, 11, 16, 0, tzinfo=LOCAL_TZ),
        )
        steps.ingest_partition(con, catalog, raw, "2024-Q1", now, register, cache, ReadLimits(max_cell_chars=5))
        (tag,) = con.execute("select parse_tag from raw_submission").fetchone()
        assert tag == ingest.parse_tag(ReadLimits(max_cell_chars=5)) != ingest.parse_tag(None)


def test_the_content_record_fills_every_column_of_the_raw_tables(tmp_path):
    """Each raw table's columns are the per-file ones (submission_id, partition_key) plus the
    content record's: a column added to a raw table's DDL must be added to the record too."""
    import duckdb

    from pipelines.models import all_models
    from pipelines.workbook import read_workbook

    path = make_form(tmp_path / "TD-XA-LIEUTU_2024-Q1.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 10, "HSO.02": "mười"})
    record = ingest.content_record(read_workbook(path))
    con = duckdb.connect()
    for table, columns in ingest.CONTENT_COLUMNS.items():
        assert tuple(json.loads(record[table])) == columns, table
        con.execute(all_models()[table].ddl)
        ddl = [
            r[0] for r in con.execute("select column_name from duckdb_columns() where table_name = $t", {"t": table}).fetchall()
        ]
        assert sorted(ddl) == sorted(["submission_id", "partition_key", *columns]), table


def test_a_change_to_the_content_record_code_is_a_new_cache_and_parse_tag(tmp_path, monkeypatch):
    """Cached records and the raw rows written from them carry a hash of the code that shapes them."""
    import inspect

    before = (ingest.content_version(), ingest.parse_tag(None), ingest._cache_key("ab" * 32, None))
    assert before[0] in before[1] and before[0] in before[2]
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: real(obj) + ("# changed\n" if obj is ingest.content_record else ""))
    ingest.content_version.cache_clear()
    try:
        after = (ingest.content_version(), ingest.parse_tag(None), ingest._cache_key("ab" * 32, None))
    finally:
        monkeypatch.undo()
        ingest.content_version.cache_clear()
    assert after[0] != before[0] and after[1] != before[1] and after[2] != before[2]
    assert ingest.content_version() == before[0]


def test_a_ctrl_c_while_the_parse_pool_forks_interrupts_the_command(tmp_path):
    """A SIGINT that lands while Python runs its after-fork hooks (the parse pool starting) is not
    lost: without holding it back, the KeyboardInterrupt raised in the hook is only printed
    ("Exception ignored") and the command goes on, e.g. waits out the run lock."""
    script = tmp_path / "fork_interrupt.py"
    script.write_text(
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from pipelines import ingest\n"
        "fired = []\n"
        "def hook():\n"
        "    if not fired:  # the first fork of the pool: a Ctrl-C arrives now\n"
        "        fired.append(1)\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "os.register_at_fork(after_in_parent=hook)\n"
        "try:\n"
        "    ingest._pool_map(abs, list(range(-40, 0)), 2)\n"
        "    print('completed')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n",
        encoding="utf-8",
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "interrupted", (result.stdout, result.stderr)
    assert "Exception ignored" not in result.stderr


def _forms(folder: Path, count: int) -> list[Path]:
    """`count` workbooks of different content (one agency's form, one figure apart)."""
    paths = []
    for i in range(count):
        path = folder / f"TD-XA-LIEUTU_{i:03d}.xlsx"
        make_form(path, "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 100 + i, "HSO.02": i})
        paths.append(path)
    return paths


def test_the_parse_cache_keeps_what_the_parse_processes_read(tmp_path, monkeypatch):
    """Records written by the parse processes (enough workbooks for a pool) are found again by this
    process: nothing is parsed twice, and the records are those of a fresh read."""
    paths = _forms(tmp_path / "raw", ingest.PARALLEL_FROM + 4)
    cache = tmp_path / "parsed"
    entries = ingest.index_reads(paths, cache, workers=2)
    assert [h for h, _ in entries] == [ingest._file_hash(p, None) for p in paths]
    assert [period.code for _, period in entries] == ["2024-Q1"] * len(paths)
    assert ingest._cache_db(cache).is_file() and not list(cache.rglob("*.pickle"))  # one database, no file per workbook

    def refuse(*args):
        raise AssertionError(f"parsed again: {args}")

    fresh = [ingest.content_record(ingest.read_workbook(p)) for p in paths[:3]]
    monkeypatch.setattr(ingest, "read_workbook", refuse)
    records = ingest.content_records(paths, cache, workers=2)
    assert [r["content_hash"] for r in records] == [h for h, _ in entries]
    assert records[:3] == fresh
    assert ingest.index_reads(paths, cache, workers=2) == entries


def test_a_broken_or_cleared_parse_cache_means_parsing_again(tmp_path, monkeypatch):
    """A cache file that is not a database is made again; a cache folder cleared while this process
    has the database open is not read from the deleted file; the records come out the same."""
    import shutil

    paths = _forms(tmp_path / "raw", 3)
    cache = tmp_path / "parsed"
    earlier = ingest._cache_db(cache).parent  # an earlier version's records, one file each, and its folder index
    earlier.mkdir(parents=True)
    (earlier / f"{'ab' * 32}.default.rows-0.pickle").write_bytes(b"old")
    (earlier / "folder-index.0.pickle").write_bytes(b"index")
    first = ingest.content_records(paths, cache)
    assert [p.name for p in earlier.glob("*.pickle")] == ["folder-index.0.pickle"]
    parsed = []
    original = ingest.read_workbook
    monkeypatch.setattr(ingest, "read_workbook", lambda path, *a: parsed.append(Path(path).name) or original(path, *a))

    shutil.rmtree(cache)  # cleared by an operator: this process still has the old database open
    assert ingest.content_records(paths, cache) == first and len(parsed) == 3
    assert ingest.content_records(paths, cache) == first and len(parsed) == 3  # kept again

    database = ingest._cache_db(cache)
    for leftover in database.parent.glob(database.name + "*"):
        leftover.unlink()
    ingest._CACHE_CONNECTIONS.clear()  # as a new process
    database.write_bytes(b"not a database, a disk's leftovers" * 100)
    assert ingest.content_records(paths, cache) == first and len(parsed) == 6
    assert ingest.content_records(paths, cache) == first and len(parsed) == 6


def test_a_folder_index_of_another_shape_is_not_trusted(tmp_path):
    """A folder's index file this code did not write (another shape, e.g. from another version,
    columns of different lengths, another folder's) is read again from the workbooks, not used and
    not a crash; the single index file kept before, under its old name, is removed."""
    import pickle

    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    paths = _forms(raw / "2024-Q1", 2)
    first = ingest.index_folder(raw, cache)
    (index,) = cache.glob("*/folder-index.*/*.pickle")
    shape, folder, columns = pickle.loads(index.read_bytes())
    assert shape == ingest._INDEX_FORMAT and folder == str(raw / "2024-Q1")
    names, sizes, mtimes, hashes, partitions = columns
    assert names == tuple(p.name for p in paths) and len(set(hashes)) == 2 and partitions == ("2024-Q1",) * 2
    stat = paths[0].stat()
    earlier = index.parent.with_name(index.parent.name.rsplit(".", 1)[0] + ".pickle")
    for kept in (
        ("folders-0", folder, columns),  # another shape's name
        {str(paths[0]): (stat.st_size, stat.st_mtime_ns, "not-its-hash", "2023-Q4")},  # the shape kept before
        (ingest._INDEX_FORMAT, folder, (names, sizes, mtimes, ("not-its-hash",), partitions)),  # a short column
        (ingest._INDEX_FORMAT, folder, "not columns"),
        (ingest._INDEX_FORMAT, str(raw / "2024-Q2"), (names, sizes, mtimes, ("x", "y"), ("2024-Q2",) * 2)),  # another's
    ):
        index.write_bytes(pickle.dumps(kept))
        earlier.write_bytes(pickle.dumps({str(paths[0]): (stat.st_size, stat.st_mtime_ns, "not-its-hash", "2023-Q4")}))
        assert ingest.index_folder(raw, cache) == first
        assert not earlier.exists()
    index.write_bytes(b"not a pickle")
    assert ingest.index_folder(raw, cache) == first


def test_within_one_command_the_raw_folder_is_looked_at_once(tmp_path, monkeypatch):
    """Within `one_look_per_command` the first look at a folder answers the command's later ones
    (however the folder is named), a workbook changed meanwhile is left to the next command, and a
    nested scope keeps the outer look; another cache folder is a look of its own. Outside, every
    call looks again."""
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    paths = _forms(raw / "2024-Q1", 2)
    looks: list = []
    real_scan = ingest._scan_runs
    monkeypatch.setattr(ingest, "_scan_runs", lambda folder: looks.append(folder) or real_scan(folder))
    with ingest.one_look_per_command():
        first = ingest.index_entries(raw, cache)
        make_form(paths[0], "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 987654, "HSO.02": 0})  # changed during the command
        assert ingest.index_entries(raw, cache) is first
        assert ingest.index_entries(str(raw / ".." / "raw"), str(cache)) is first
        with ingest.one_look_per_command():
            assert ingest.index_entries(raw, cache) is first
        other = ingest.index_entries(raw, tmp_path / "another-cache")
        assert ingest.index_entries(raw, tmp_path / "another-cache") is other
    assert len(looks) == 2
    after = ingest.index_entries(raw, cache)  # the next command sees the change
    assert after[str(paths[0])].content_hash != first[str(paths[0])].content_hash
    assert after[str(paths[1])] == first[str(paths[1])]
    assert ingest.index_entries(raw, cache) == after and len(looks) == 4  # outside a command: each call looks


def test_within_one_command_a_receipts_register_is_read_once_while_its_file_is_unchanged(tmp_path, monkeypatch):
    register = tmp_path / "receipts.csv"
    register.write_text("file_name,received_at\na.xlsx,2024-04-10T08:00:00\n", encoding="utf-8")
    reads: list = []
    real_read = ingest._read_receipt_register
    monkeypatch.setattr(ingest, "_read_receipt_register", lambda path: reads.append(path) or real_read(path))
    with ingest.one_look_per_command():
        first = ingest.load_receipt_register(register)
        assert ingest.load_receipt_register(register) is first and len(reads) == 1
        register.write_text(
            "file_name,received_at\na.xlsx,2024-04-10T08:00:00\nb.xlsx,2024-04-11T09:30:00\n", encoding="utf-8"
        )  # changed during the command: read again, as the run's fields print (register_print) says
        assert set(ingest.load_receipt_register(register)) == {"a.xlsx", "b.xlsx"} and len(reads) == 2
        assert ingest.load_receipt_register(tmp_path / "missing.csv") == {}
    assert set(first) == {"a.xlsx"}
    ingest.load_receipt_register(register)
    ingest.load_receipt_register(register)
    assert len(reads) == 5  # outside a command: each call reads


def test_a_command_that_fails_leaves_no_look_behind(tmp_path):
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    _forms(raw / "2024-Q1", 1)
    with pytest.raises(RuntimeError), ingest.one_look_per_command():
        ingest.index_entries(raw, cache)
        raise RuntimeError("the command failed")
    assert ingest._LOOKED is None


def test_the_folder_index_is_written_only_when_the_folder_changed(tmp_path):
    """A look at an unchanged folder reads the index and writes nothing; a new, a changed or a
    removed workbook is in the next index, whose file is written for its folder only; a folder gone
    takes its file with it."""
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    paths = _forms(raw / "2024-Q1", 2)
    other = _forms(raw / "2024-Q2", 1)
    first = ingest.index_folder(raw, cache)
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("*/folder-index.*/*.pickle")}
    assert len(kept) == 2
    assert ingest.index_folder(raw, cache) == first
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("*/folder-index.*/*.pickle")} == kept
    paths[0].unlink()
    partitions, hashes = ingest.index_folder(raw, cache)
    assert list(partitions) == [paths[1], other[0]]
    now = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("*/folder-index.*/*.pickle")}
    assert set(now) == set(kept) and len([p for p in now if now[p] != kept[p]]) == 1  # the first folder's file only
    assert ingest.index_folder(raw, cache) == (partitions, hashes)
    other[0].unlink()
    other[0].parent.rmdir()
    assert list(ingest.index_folder(raw, cache)[0]) == [paths[1]]
    assert len(list(cache.glob("*/folder-index.*/*.pickle"))) == 1


def test_the_folder_index_answers_as_every_file_looked_at_one_by_one(tmp_path, monkeypatch):
    """The index kept per folder gives every workbook in the folder's order (a folder's files after
    one of its subfolders come after that subfolder's), each with its own size, time, hash and
    quarter, as statting and reading each file gives them; only the files the index does not know
    as they are now are read; a folder's quarters are found without a walk over every file."""
    import os

    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    specs = {  # path under raw: (declared period, HSO.01)
        "0.xlsx": ("Quý IV/2023", 1),
        "2024-Q1/a.xlsx": ("Quý I/2024", 2),
        "2024-Q1/m/b.xlsx": ("Quý I/2024", 3),
        "2024-Q1/m/n/c.xlsx": ("6 tháng đầu năm 2024", 4),
        "2024-Q1/z.xlsx": ("Quý I/2024", 5),
        "2024-Q3/x.xlsx": ("Quý III/2024", 6),
        "a.xlsx": ("Quý I/2024", 7),
    }
    for name, (period, figure) in specs.items():
        make_form(raw / name, "TD-XA-LIEUTU", period, {"HSO.01": figure, "HSO.02": 0})

    def one_by_one() -> dict:
        expected = {}
        for path in ingest.scan_raw_folder(raw):
            stat = path.stat()
            ((content_hash, period),) = ingest.index_reads([path], cache)
            partition = ingest.partition_of(period, ingest.folder_period(path, raw))
            expected[str(path)] = ingest.IndexEntry(stat.st_size, stat.st_mtime_ns, content_hash, partition)
        return expected

    expected = one_by_one()
    assert [os.path.relpath(n, raw) for n in expected] == list(specs)
    for _ in range(2):  # read, then from the index
        index = ingest.index_entries(raw, cache)
        assert list(index.items()) == list(expected.items()) and list(index) == list(expected)
        assert len(index) == len(expected) and dict(index) == expected and index == expected
        assert all(index[name] == entry for name, entry in expected.items())
        assert index.partitions() == {"unassigned", "2024-Q1", "2024-Q2", "2024-Q3"}  # 2023 comes before the quarters
        assert [n for n, _ in index.items(["2024-Q1", "unassigned"])] == [
            n for n, e in expected.items() if e.partition in ("2024-Q1", "unassigned")
        ]
        assert list(index.items(["2024-Q4"])) == []
        with pytest.raises(KeyError):
            index[str(raw / "2024-Q1" / "missing.xlsx")]
        with pytest.raises(KeyError):
            index[str(raw / "missing" / "a.xlsx")]
    make_form(raw / "2024-Q1/m/b.xlsx", "TD-XA-LIEUTU", "Quý II/2024", {"HSO.01": 30, "HSO.02": 0})  # changed in place
    make_form(raw / "2024-Q1/m/d.xlsx", "TD-XA-LIEUTU", "Quý I/2024", {"HSO.01": 8, "HSO.02": 0})  # new
    (raw / "2024-Q1/z.xlsx").unlink()
    read: list = []
    real_reads = ingest.index_reads
    monkeypatch.setattr(ingest, "index_reads", lambda paths, *a, **k: read.extend(paths) or real_reads(paths, *a, **k))
    index = ingest.index_entries(raw, cache)
    assert sorted(os.path.relpath(p, raw) for p in read) == ["2024-Q1/m/b.xlsx", "2024-Q1/m/d.xlsx"]
    monkeypatch.setattr(ingest, "index_reads", real_reads)
    assert list(index.items()) == list(one_by_one().items())
    assert index[str(raw / "2024-Q1/m/b.xlsx")].content_hash != expected[str(raw / "2024-Q1/m/b.xlsx")].content_hash


def test_content_rows_go_into_their_table_each_value_in_its_row_and_in_order():
    """DuckDB reads the content tables' JSON text into rows with the tables' types: a submission's
    rows in the reader's order, text as typed (a date-like note, quotes, a backslash, a line break,
    control characters a cell can hold as _x0000_, Vietnamese), numbers and booleans typed, a missing value NULL; a submission with no row of a
    table adds none."""
    import duckdb

    from pipelines.models import all_models

    con = duckdb.connect()
    for table in ingest.CONTENT_COLUMNS:
        con.execute(all_models()[table].ddl)
    columns = ingest.CONTENT_COLUMNS["raw_value"]
    first = [
        ("HSO.02", "1.234", 1234.0, "ok", False, "Số liệu", "E9", "Trong đó: trực tuyến", "hồ sơ", "2024-03-05"),
        ("HSO.01", None, None, "empty", None, "Số liệu", "E8", 'Tổng số "hồ sơ"', "\x00\x1f", "a\\b\nc"),
        ("TTHC.01", "85%", 85.0, "ok", True, "Số liệu", "E10", "", None, None),
    ]
    second = [("HSO.01", "12", 12.0, "ok", False, "Sheet1", "C5", "x", "y", "z")]

    def text(rows):
        return ingest._rows_text({c: [row[i] for row in rows] for i, c in enumerate(columns)})

    batch = ingest.ContentRows(["s1", "s2", "s3"], ["2024-Q1", "2024-Q1", "unassigned"], [text(first), text([]), text(second)])
    assert ingest.insert_content_rows(con, "raw_value", batch) == 4
    got = con.execute(f"select submission_id, partition_key, {', '.join(columns)} from raw_value order by rowid").fetchall()
    assert got == [("s1", "2024-Q1", *row) for row in first] + [("s3", "unassigned", *row) for row in second]
    tasks = ingest._rows_text({c: (["NV.01"] if c != "row_number" else [7]) for c in ingest.CONTENT_COLUMNS["raw_task"]})
    assert ingest.insert_content_rows(con, "raw_task", ingest.ContentRows(["s1"], ["2024-Q1"], [tasks])) == 1
    assert con.execute("select task_code, row_number from raw_task").fetchall() == [("NV.01", 7)]
    assert ingest.insert_content_rows(con, "raw_task", ingest.ContentRows([], [], [])) == 0


PARTS = st.one_of(
    st.sampled_from(["2021-Q1", "Quý I-2021", "2024-H1", "Năm 2023", "a.b.xlsx", ".hidden"]),
    st.text(alphabet="ab._- xĐ", min_size=1, max_size=8).filter(lambda n: n not in (".", "..")),
)


@given(st.lists(PARTS, min_size=1, max_size=3))
@settings(max_examples=300, deadline=None)
def test_a_file_s_stem_and_folder_are_pathlib_s(parts):
    """The file fields of 4,000 files a quarter are worked out from strings, without a Path per file:
    the same stem and folder as pathlib's."""
    path = "/".join(["/srv/raw", *parts])
    assert ingest._stem(path) == Path(path).stem
    assert ingest.folder_period(path, Path("/srv/raw")) == ingest._folder_period(str(Path(path).parent), "/srv/raw")


def test_a_content_is_first_seen_once_under_its_first_path(tmp_path):
    """raw_file_log keeps the first time and path a content was seen: a later run, another path or
    a copy of the file in the same run change neither; a new content gets the run's time."""
    t1 = dt.datetime(2024, 4, 1, 9, tzinfo=LOCAL_TZ)
    t2 = t1 + dt.timedelta(days=3)
    with Warehouse(tmp_path / "w.duckdb").connect() as con:
        first = ingest.record_first_seen_of(
            con, [("h1", Path("a.xlsx"), 10), ("h1", Path("b.xlsx"), 10), ("h2", Path("c.xlsx"), None)], t1
        )
        assert first == {"h1": t1, "h2": t1}
        again = ingest.record_first_seen_of(con, [("h1", Path("z.xlsx"), 10), ("h3", Path("d.xlsx"), 7)], t2)
        assert again == {"h1": t1, "h3": t2}
        rows = con.execute("select content_hash, first_path, first_seen_at, size_bytes from raw_file_log order by 1").fetchall()
        assert rows == [("h1", "a.xlsx", t1, 10), ("h2", "c.xlsx", t1, None), ("h3", "d.xlsx", t2, 7)]
        assert ingest.record_first_seen_of(con, [], t2) == {}


def test_the_parse_cache_of_another_reader_version_goes_once_unused_for_a_week(tmp_path):
    """After an upgrade the new reader parses into a cache of its own: the old one is removed once
    none of its files was written for CACHE_KEPT_DAYS; a recent one (an older process still
    writing it), the current one and anything that is not a version's folder stay."""
    import os
    import time

    cache = tmp_path / "parsed"
    now = time.time()
    old, recent, other = cache / ("a" * 16), cache / ("b" * 16), cache / "notes"
    current = cache / ingest.reader_version()
    for folder in (old, recent, other, current):
        folder.mkdir(parents=True)
        (folder / "records.sqlite").write_bytes(b"x")
    week = ingest.CACHE_KEPT_DAYS * 86400
    for folder, age in ((old, week + 3600), (other, 2 * week), (current, 2 * week), (recent, 3600)):
        for path in (folder / "records.sqlite", folder):
            os.utime(path, (now - age, now - age))
    assert ingest.remove_old_caches(cache, now) == [old]
    assert sorted(p.name for p in cache.iterdir()) == sorted([recent.name, other.name, current.name])
    # the folder index runs it: a workbook folder indexed with this cache folder
    os.utime(recent / "records.sqlite", (now - week - 60, now - week - 60))
    os.utime(recent, (now - week - 60, now - week - 60))
    (tmp_path / "raw").mkdir()
    ingest.index_folder(tmp_path / "raw", cache)
    assert not recent.exists() and current.exists()
    assert ingest.remove_old_caches(tmp_path / "absent", now) == []


def test_one_ahead_works_out_the_next_item_while_the_caller_uses_the_one_before(monkeypatch):
    """Results come in order; item k+1 is worked out in the helper thread while the caller holds
    item k's result (the caller waits for it there, which would time out otherwise)."""
    import threading

    monkeypatch.setattr(ingest.os, "cpu_count", lambda: 2)
    started = {i: threading.Event() for i in range(4)}
    threads = {}

    def work(item):
        threads[item] = threading.current_thread().name
        started[item].set()
        return item * 10

    got = []
    for result in ingest.one_ahead(work, [0, 1, 2, 3]):
        got.append(result)
        k = result // 10
        if k < 3:
            assert started[k + 1].wait(10), f"item {k + 1} was not under way while the caller held item {k}"
    assert got == [0, 10, 20, 30]
    assert all(name.startswith("cchc-raw-batch") for name in threads.values())
    assert not [t for t in threading.enumerate() if t.name.startswith("cchc-raw-batch")]  # the helper is gone


def test_one_ahead_raises_an_item_s_error_where_the_caller_comes_to_it_and_stops_with_the_caller(monkeypatch):
    import threading

    monkeypatch.setattr(ingest.os, "cpu_count", lambda: 2)
    worked = []

    def work(item):
        worked.append(item)
        if item == 2:
            raise ValueError("bad batch")
        return item

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for result in ingest.one_ahead(work, [0, 1, 2, 3, 4]):
            got.append(result)
    assert got == [0, 1] and 4 not in worked  # the items after the error are not worked out
    # the caller stops early (its own error, an interruption): the item under way is dropped, no more
    worked.clear()
    items = ingest.one_ahead(work, [0, 1, 3, 4])
    assert next(items) == 0
    items.close()
    assert 0 in worked and set(worked) <= {0, 1}  # item 1 was under way (or dropped before it began), no later one
    assert not [t for t in threading.enumerate() if t.name.startswith("cchc-raw-batch")]
    # one CPU, or one item: all in the caller's thread
    monkeypatch.setattr(ingest.os, "cpu_count", lambda: 1)
    names = []
    assert list(ingest.one_ahead(lambda i: names.append(threading.current_thread().name) or i, [1, 2])) == [1, 2]
    assert names == [threading.current_thread().name] * 2


def test_the_raw_step_loads_its_batches_from_the_cache_in_a_helper_thread(tmp_path, catalog, monkeypatch):
    """Batches of one workbook each (so several, loaded beside the writes, `one_ahead`): the records
    the folder's index cached from this thread are loaded from the helper threads of two raw steps in
    turn, nothing is parsed again, and the rows are those of a step without the cache."""
    monkeypatch.setattr(ingest.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(ingest, "WRITE_BATCH", 1)
    raw, cache = tmp_path / "raw", tmp_path / "parsed"
    for i, agency in enumerate(("TD-XA-LIEUTU", "TD-XA-TAIVAN", "TD-XA-DAIAN2", "TD-PHONG-TUPHAP")):
        make_form(raw / "2024-Q1" / f"{agency}_2024-Q1.xlsx", agency, "Quý I/2024", {"HSO.01": 10 + i, "HSO.02": i})
    make_form(raw / "2024-Q3" / "TD-XA-LIEUTU_2024-Q3.xlsx", "TD-XA-LIEUTU", "Quý III/2024", {"HSO.01": 7})
    make_form(raw / "2024-Q3" / "TD-XA-TAIVAN_2024-Q3.xlsx", "TD-XA-TAIVAN", "Quý III/2024", {"HSO.01": 8})
    ingest.index_entries(raw, cache)  # parsed here, in this thread, and cached
    now = dt.datetime(2024, 10, 20, 9, 0, tzinfo=LOCAL_TZ)

    def refuse(*args):
        raise AssertionError(f"parsed again: {args}")

    monkeypatch.setattr(ingest, "read_workbook", refuse)
    with Warehouse(tmp_path / "db.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        first = steps.ingest_partition(con, catalog, raw, "2024-Q1", now, None, cache)
        second = steps.ingest_partition(con, catalog, raw, "2024-Q3", now, None, cache)
        cached = _raw_state(con)
    assert (first["raw_submission"], first["raw_value"], second["raw_submission"]) == (4, 8, 2)
    monkeypatch.undo()
    with Warehouse(tmp_path / "fresh.duckdb").connect() as con:
        steps.publish_dimensions(con, catalog)
        for key in ("2024-Q1", "2024-Q3"):
            steps.ingest_partition(con, catalog, raw, key, now, None, None)
        assert _raw_state(con) == cached
