"""Typed catalog loading: every row and plan target goes through its record, a bad value is named by
file, row or YAML path and field (Vietnamese first), and each calendar's time zone reaches the due times."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipelines.catalog import Calendar, Catalog, CatalogError, OrgUnit, PlanTarget, Ramp
from pipelines.dims import dim_period
from pipelines.periods import DEFAULT_TIMEZONE, Period
from pipelines.schedules import build_quarterly_schedule, schedule_timezone

REPO = Path(__file__).resolve().parent.parent


def edited_catalog(tmp_path: Path, *edits: tuple[str, str, str]) -> tuple[Path, list[int]]:
    """A copy of the repository catalog with (file, old, new) edits; returns it and each edit's line (1-based)."""
    folder = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", folder)
    lines = []
    for file, old, new in edits:
        path = folder / file
        text = path.read_text(encoding="utf-8")
        assert old in text, (file, old)
        lines.append(text[: text.index(old)].count("\n") + 1)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder, lines


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        Catalog.load(folder)
    return caught.value.problems


def assert_vietnamese_first(problem: str, vi: str, en: str) -> None:
    assert vi in problem and en in problem, problem
    assert problem.index(vi) < problem.index(" / ") < problem.index(en), problem


@pytest.mark.parametrize(
    ("file", "old", "new", "column", "vi", "en"),
    [
        ("data_elements.csv", "văn bản,flow,count,,", "văn bản,flows,count,,", "kind", "'flows' không có trong", "is not one of"),
        ("org_units.csv", ",true,", ",maybe,", "reports", "'maybe' phải là true hoặc false", "must be true or false"),
        ("org_units.csv", ",2009-08-01,", ",01/08/2009,", "valid_from", "ngày '01/08/2009' không hợp lệ", "write YYYY-MM-DD"),
        ("calendars.csv", ",11,10,", ",eleven,10,", "due_day", "'eleven' phải là số nguyên từ 1 đến 28", "from 1 to 28"),
        ("indicators/form.csv", ",higher,%,100", ",upward,%,100", "direction", "'upward' không có trong", "is not one of"),
        (
            "validation_rules.csv",
            "V_WHOLE,value_check",
            "V_WHOLE,value_chek",
            "kind",
            "'value_chek' không có trong",
            "is not one of",
        ),
    ],
)
def test_a_bad_csv_value_names_file_row_and_column(tmp_path, file, old, new, column, vi, en):
    folder, (line,) = edited_catalog(tmp_path, (file, old, new))
    (problem,) = problems_of(folder)
    assert problem.startswith(f"{file}, dòng/row {line}, cột/column {column}: "), problem
    assert_vietnamese_first(problem, vi, en)


@pytest.mark.parametrize(
    ("old", "new", "path", "vi", "en"),
    [
        (
            "    value: 100\n",
            "    value: tám mươi\n",
            "targets[0] (id TD-01).value",
            "'tám mươi' phải là một số",
            "must be a number",
        ),
        (
            "    value: 100\n",
            "    value: .nan\n",
            "targets[0] (id TD-01).value",
            "phải là một số hữu hạn",
            "must be a finite number",
        ),
        (
            "    ramp: null\n",
            "    ramp: {base_year: 2024, base_value: 40, step: hai mươi}\n",
            "targets[0] (id TD-01).ramp.step",
            "'hai mươi' phải là một số",
            "must be a number",
        ),
        (
            "    start_year: 2024\n",
            "    start_year: năm sau\n",
            "targets[0] (id TD-01).start_year",
            "phải là số nguyên",
            "whole number",
        ),
        ("    form: maintain\n", "    form: ramp\n", "targets[0] (id TD-01).ramp", "cần khai báo ramp", "needs its ramp"),
        (
            "    section:",
            "    sectoin:",
            "targets[0] (id TD-01).sectoin",
            "không có trong mẫu khai báo",
            "unknown field 'sectoin'",
        ),
        ("end_year: 2024}", "end_year: hai nghìn}", "plan.phases[0].end_year", "phải là số nguyên", "whole number"),
        (
            "  - id: TD-01\n",
            '  - id: "TD\\t01"\n',
            "targets[0] (id TD\t01).id",
            "mã 'TD\\t01' có ký tự điều khiển hoặc ký tự ẩn",
            "holds a control or invisible character",
        ),
    ],
)
def test_a_bad_yaml_value_names_its_path_and_field(tmp_path, old, new, path, vi, en):
    folder, _ = edited_catalog(tmp_path, ("plans/tran-de-2024.yaml", old, new))
    (problem,) = problems_of(folder)
    assert problem.startswith(f"plans/tran-de-2024.yaml, {path}: "), problem
    assert_vietnamese_first(problem, vi, en)


def test_every_bad_value_of_every_file_is_reported_at_once(tmp_path):
    folder, _ = edited_catalog(
        tmp_path,
        ("data_elements.csv", "văn bản,flow,count,,", "văn bản,flows,count,,"),
        ("calendars.csv", ",Asia/Ho_Chi_Minh,", ",Mars/Olympus,"),
        ("plans/tran-de-2024.yaml", "    value: 100\n", "    value: trăm\n"),
    )
    problems = problems_of(folder)
    assert [p.split(",")[0] for p in problems] == ["data_elements.csv", "calendars.csv", "plans/tran-de-2024.yaml"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "asia/ho_chi_minh", "Asia", "../etc/passwd", "UTC+7"])
def test_a_calendar_time_zone_must_be_an_iana_zone(tmp_path, zone):
    folder, (line,) = edited_catalog(
        tmp_path, ("calendars.csv", "TD,UBND huyện Trần Đề,11,10,Asia/Ho_Chi_Minh,", f"TD,UBND huyện Trần Đề,11,10,{zone},")
    )
    (problem,) = problems_of(folder)
    assert problem.startswith(f"calendars.csv, dòng/row {line}, cột/column timezone: '{zone}'"), problem
    assert_vietnamese_first(problem, "không phải múi giờ IANA", "is not an IANA time zone")


def test_an_empty_or_missing_time_zone_is_the_default():
    assert Calendar(authority="X", due_day=11, cutoff_day=10, timezone="").timezone == DEFAULT_TIMEZONE
    assert Calendar(authority="X", due_day=11, cutoff_day=10).tz == ZoneInfo(DEFAULT_TIMEZONE)


def test_due_at_ends_the_due_day_in_the_given_zone():
    assert Period(2024, "Q1").due_at(11) == dt.datetime(2024, 3, 12, tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    tokyo = Period(2024, "H1").due_at(15, "Asia/Tokyo")
    assert tokyo == dt.datetime(2024, 6, 16, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert tokyo.astimezone(dt.UTC) == dt.datetime(2024, 6, 15, 15, 0, tzinfo=dt.UTC)


def test_the_calendar_time_zone_reaches_expected_reports_dim_period_and_the_schedule(tmp_path):
    folder, _ = edited_catalog(
        tmp_path,
        ("calendars.csv", "TD,UBND huyện Trần Đề,11,10,Asia/Ho_Chi_Minh,", "TD,UBND huyện Trần Đề,11,10,Asia/Tokyo,"),
        ("calendars.csv", "NN,UBND thị xã Ngã Năm,11,10,Asia/Ho_Chi_Minh,", "NN,UBND thị xã Ngã Năm,11,10,,"),  # empty: default
    )
    catalog = Catalog.load(folder)
    expected = catalog.expected_reporters(Period(2024, "Q1"))
    zones = expected.groupby("reporting_authority")["timezone"].first().to_dict()
    assert zones == {"TD": "Asia/Tokyo", "NN": DEFAULT_TIMEZONE}
    periods = dim_period(catalog).set_index(["period_code", "authority"])["due_at"]
    assert periods[("2024-Q1", "TD")] == dt.datetime(2024, 3, 11, 15, 0, tzinfo=dt.UTC)  # midnight in Tokyo
    assert periods[("2024-Q1", "NN")] == dt.datetime(2024, 3, 11, 17, 0, tzinfo=dt.UTC)  # midnight in Hồ Chí Minh City
    # one schedule, in the zone most calendars use
    assert schedule_timezone(catalog) == DEFAULT_TIMEZONE
    assert build_quarterly_schedule(catalog).execution_timezone == DEFAULT_TIMEZONE


def test_the_schedule_follows_the_calendars_zone(tmp_path):
    calendars = REPO / "catalog" / "calendars.csv"
    text = calendars.read_text(encoding="utf-8")
    folder, _ = edited_catalog(tmp_path, ("calendars.csv", text, text.replace(",Asia/Ho_Chi_Minh,", ",Asia/Bangkok,")))
    catalog = Catalog.load(folder)
    assert schedule_timezone(catalog) == "Asia/Bangkok"
    assert build_quarterly_schedule(catalog).execution_timezone == "Asia/Bangkok"


def test_records_are_typed_and_the_frames_are_views_of_them(catalog):
    ramps = [t for t in catalog.records.targets if t.form == "ramp"]
    assert ramps and all(isinstance(t.ramp, Ramp) for t in ramps)
    assert all(isinstance(t, PlanTarget) and (t.value_max is None or t.operator == "range") for t in catalog.records.targets)
    assert all(t.baseline is None for t in catalog.records.targets if t.form != "baseline_reduction")
    unit = catalog.units_by_code["TD-PHONG-NNMT"]
    assert isinstance(unit, OrgUnit) and unit.valid_from == dt.date(2025, 3, 1) and unit.reports
    assert catalog.units_by_code["CT"].parent_code is None  # an empty optional code is None, not "" or NaN
    # the DataFrame views: one row per record, the YAML shape of ramps kept for dim_target
    assert len(catalog.targets) == len(catalog.records.targets) and len(catalog.org_units) == len(catalog.records.org_units)
    ramp = catalog.targets.set_index("target_id").loc[ramps[0].target_id, "ramp"]
    assert ramp == ramps[0].ramp.model_dump(exclude_none=True) and isinstance(ramp["base_value"], int)
    assert "timezone" in catalog.calendars.columns


def test_a_duplicated_contact_is_a_catalog_error_naming_its_row(tmp_path):
    """dim_contact's grain (unit, role, address) is checked where it can be fixed: in contacts.csv."""
    line = "TD-UBND,submitter,Nguyễn Thị Hồng,ubnd@trande.soctrang.gov.vn,0299 3850 100\n"
    folder, _ = edited_catalog(tmp_path, ("contacts.csv", line, line + line))
    (problem,) = problems_of(folder)
    assert "contacts.csv" in problem and "dòng/row 3" in problem and "(first at row 2)" in problem
    assert_vietnamese_first(problem, "bị trùng", "duplicate contact")


def test_two_plan_files_with_one_id_are_a_catalog_error(tmp_path):
    folder, _ = edited_catalog(tmp_path)
    source = folder / "plans" / "tran-de-2024.yaml"
    (folder / "plans" / "tran-de-2024-copy.yaml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    problems = problems_of(folder)
    assert any("plans/tran-de-2024.yaml, plan.id" in p and "duplicate plan id 'tran-de-2024'" in p for p in problems), problems


def test_a_unit_type_outside_the_known_kinds_is_a_catalog_error(tmp_path):
    """A unit's kind decides which targets it carries (a target restricted to `department` or
    `people_committee`): a typo in org_units.csv, or a target restricted to another kind, would drop
    units from those targets without a word. Both are named, Vietnamese first; an empty unit_type
    stays allowed in org_units.csv and in a target."""
    folder, (unit_line, _) = edited_catalog(
        tmp_path,
        ("org_units.csv", "Minh Duc Commune,commune,commune,", "Minh Duc Commune,thôn,commune,"),
        ("plans/ngan-nam-2021-2030.yaml", "  unit_type: department\n", "  unit_type: deparment\n"),
    )
    unit, target = problems_of(folder)
    assert unit.startswith(f"org_units.csv, dòng/row {unit_line}, cột/column unit_type: "), unit
    assert_vietnamese_first(unit, "'thôn' không có trong các loại đơn vị", "is not in the unit types")
    assert target.startswith("plans/ngan-nam-2021-2030.yaml, targets[") and ".unit_type: " in target, target
    assert_vietnamese_first(target, "'deparment' không có trong các loại cơ quan", "is not in the agency types (people_committee")


def test_the_catalog_is_loaded_again_after_an_edit_even_in_a_linked_folder(tmp_path):
    """Catalog.load keeps a catalog while its files' fingerprint holds (paths, sizes, modification
    times, in path order); an edit anywhere under the folder, a plans folder linked from elsewhere
    included, loads it again."""
    from pipelines.catalog.loading import fingerprint

    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root)
    elsewhere = tmp_path / "shared_plans"
    (root / "plans").rename(elsewhere)
    (root / "plans").symlink_to(elsewhere, target_is_directory=True)
    first = Catalog.load(root)
    assert Catalog.load(root) is first
    listed = [name for name, _, _ in fingerprint(root)[1]]
    assert listed == sorted(listed, key=lambda name: name.split("/"))
    assert any(name.startswith("plans/") for name in listed)
    plan = elsewhere / "can-tho-2022.yaml"
    plan.write_text(plan.read_text(encoding="utf-8") + "\n# sửa / edited\n", encoding="utf-8")
    assert Catalog.load(root) is not first
