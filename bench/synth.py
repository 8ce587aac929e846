"""Synthetic inputs for bench/run.py: a catalog with synthetic provinces, and CCHC-1 workbooks.

Every valid workbook keeps every invariant of the form (REPORTING_FORM.md): each "of which"
element is at most its parent, HSO.04 + HSO.05 = HSO.03, each ratio indicator's numerator is at
most its denominator (pairs read from catalog/indicators/*.csv, method `ratio`), counts are whole
and non-negative. Flows are drawn per quarter and summed into the report windows (Q1, H1 = Q1+Q2,
Q3, Y = Q1+..+Q4), stocks are the level at the window's end, so the derived quarters
(Q2 = H1 - Q1, Q4 = Y - H1 - Q3) keep the invariants too. About 1% of the workbooks break a rule
on purpose (HSO.02 > HSO.01, a negative count, HSO.04 + HSO.05 != HSO.03); they are listed in
the manifest.

Messy on purpose (all accepted by the form's contract): numbers typed as Vietnamese text
("1.234", "1 234", "12,5", "85%"), "-", "x", "không phát sinh" and empty cells for nothing
arising, NFD labels, lower-case keys, title rows, blank rows, reordered columns and rows, an
extra column, an extra sheet, sheets in another order, both writer engines.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import random
import shutil
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.form_writer import FIGURE_HEADER, FormContent, Quirks, write_form
from pipelines.numbers import format_vn

FIRST_YEAR = int(os.environ.get("CCHC_FIRST_YEAR", "2021"))  # as pipelines/partitions.py: the first tracked quarter
AGENCIES_PER_PROVINCE = 150
DUE_DAY, CUTOFF_DAY = 15, 14  # calendar of the synthetic provinces
WINDOW = {1: "Q1", 2: "H1", 3: "Q3", 4: "Y"}
ROMAN = {1: "I", 3: "III"}

PROVINCES = [
    "An Giang", "Bắc Ninh", "Cà Mau", "Cao Bằng", "Điện Biên", "Đồng Tháp", "Gia Lai", "Hà Tĩnh",
    "Hưng Yên", "Khánh Hòa", "Lai Châu", "Lạng Sơn", "Lào Cai", "Lâm Đồng", "Nghệ An", "Ninh Bình",
    "Phú Thọ", "Quảng Ngãi", "Quảng Ninh", "Quảng Trị", "Sơn La", "Tây Ninh", "Thái Nguyên",
    "Thanh Hóa", "Tuyên Quang", "Vĩnh Long", "Hải Phòng", "Huế", "Đà Nẵng", "Hà Nội",
]  # fmt: skip
DEPARTMENTS = [
    ("NOIVU", "Sở Nội vụ"), ("TUPHAP", "Sở Tư pháp"), ("TAICHINH", "Sở Tài chính"),
    ("CONGTHUONG", "Sở Công Thương"), ("NNMT", "Sở Nông nghiệp và Môi trường"), ("XAYDUNG", "Sở Xây dựng"),
    ("GDDT", "Sở Giáo dục và Đào tạo"), ("YTE", "Sở Y tế"), ("KHCN", "Sở Khoa học và Công nghệ"),
    ("VHTTDL", "Sở Văn hóa, Thể thao và Du lịch"), ("DANTOC", "Sở Dân tộc và Tôn giáo"),
    ("NGOAIVU", "Sở Ngoại vụ"), ("THANHTRA", "Thanh tra tỉnh"), ("BQLKKT", "Ban Quản lý các khu công nghiệp"),
    ("TTPVHCC", "Trung tâm Phục vụ hành chính công tỉnh"), ("VPDKDD", "Văn phòng Đăng ký đất đai"),
    ("BHXH", "Bảo hiểm xã hội tỉnh"), ("CONGAN", "Công an tỉnh"), ("THUE", "Thuế tỉnh"),
]  # fmt: skip
COMMUNE_FIRST = [
    "Tân", "Long", "Mỹ", "An", "Phú", "Thạnh", "Vĩnh", "Hòa", "Bình", "Đông", "Tây", "Hưng", "Phước",
    "Thới", "Trung", "Thuận", "Khánh", "Lộc", "Xuân", "Quang", "Đại", "Ninh",
]  # fmt: skip
COMMUNE_SECOND = [
    "Phú", "Hưng", "Thạnh", "Bình", "An", "Lợi", "Hòa", "Thành", "Long", "Điền", "Hiệp", "Đông", "Xuân",
    "Lạc", "Mỹ", "Quới", "Trung", "Phước", "Thuận", "Sơn", "Hải", "Tiến",
]  # fmt: skip
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Võ", "Phan", "Trương", "Bùi", "Đặng", "Đỗ", "Ngô", "Dương"]
MIDDLE = ["Thị", "Văn", "Minh", "Ngọc", "Thanh", "Hữu", "Quốc", "Thu", "Hoài", "Đức"]
GIVEN = ["Hồng", "Bình", "Thu", "Tâm", "Lan", "Hùng", "Phương", "Dũng", "Hạnh", "Khoa", "Nhung", "Tuấn", "Yến", "Quý"]

# Parent elements: (low, high) per quarter for flows, level for stocks, minutes for means, before the
# agency's size factor. Children ("of which", ratio numerators) are drawn as a share of their bound.
BASE = {
    "TCH.01": (2, 12), "TCH.03": (1, 6), "TCH.05": (1, 8),
    "TTH.01": (150, 450), "TTH.02": (60, 200), "TTH.05": (40, 120), "TTH.07": (20, 80),
    "HSO.01": (400, 3000), "HSO.03": (380, 2900), "HSO.06": (50, 500),
    "KQS.01": (3000, 30000), "KQS.03": (300, 2500), "GDT.01": (100, 1500), "PAK.01": (1, 8),
    "KSH.01": (50, 400), "KSH.03": (10, 120), "KSH.05": (50, 300), "KSH.07": (30, 200),
    "TGI.01": (5, 30), "TGI.02": (10, 60),
    "BMA.01": (10, 20), "BMA.03": (100, 1500), "CVU.01": (18, 25), "CVU.03": (5, 15),
    "TCC.01": (5, 40), "TCC.03": (1, 8), "TCC.05": (500, 5000),
    "CQS.01": (200, 3000), "CQS.03": (2, 10), "CQS.05": (1, 6), "CQS.07": (20, 150), "CQS.09": (3, 12),
    "CQS.11": (2000, 40000), "CQS.13": (300, 4000), "CQS.15": (5000, 40000), "CQS.17": (5, 25),
    "CDD.01": (5, 30), "CDD.03": (1, 10),
}  # fmt: skip
NIL_CANDIDATES = ["TCH.05", "TCH.03", "CQS.05", "CDD.03", "PAK.01", "KSH.03"]  # flows that may not arise
NIL_TEXTS = ["-", "không phát sinh", "x", "Không phát sinh", None, 0, "kps", "–"]
INVALID_KINDS = ("ofwhich_HSO02_gt_HSO01", "negative_count", "HSO04_plus_HSO05_ne_HSO03")


def slug(text: str) -> str:
    """ASCII upper-case code part: "Thạnh Phú" -> "THANHPHU"."""
    folded = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in folded if c.isalnum() and not unicodedata.combining(c)).upper()


def quarter_of(index: int) -> tuple[int, int]:
    """0 -> (2021, 1), 5 -> (2022, 2)."""
    return FIRST_YEAR + index // 4, index % 4 + 1


def quarter_key(index: int) -> str:
    """The partition key of quarter `index`: 0 -> "2021-Q1"."""
    year, quarter = quarter_of(index)
    return f"{year}-Q{quarter}"


def window_code(year: int, quarter: int) -> str:
    return f"{year}-{WINDOW[quarter]}"


def window_label(year: int, quarter: int, rng: random.Random) -> str:
    """The period as agencies write it: mostly the Vietnamese label, sometimes a variant or the code."""
    labels = {
        1: ["Quý I/{y}", "Quý I/{y}", "Quý 1 năm {y}", "{y}-Q1"],
        2: ["6 tháng đầu năm {y}", "6 tháng đầu năm {y}", "{y}-H1"],
        3: ["Quý III/{y}", "Quý III/{y}", "Quý 3 năm {y}", "{y}-Q3"],
        4: ["Năm {y}", "Năm {y}", "Báo cáo năm {y}", "{y}-Y"],
    }[quarter]
    return rng.choice(labels).format(y=year)


def due_date(year: int, quarter: int) -> dt.date:
    return dt.date(year, quarter * 3, DUE_DAY)


@dataclass
class Agency:
    code: str
    name: str
    province: str
    unit_type: str  # people_committee | department
    admin_level: str  # province | commune
    size: float


@dataclass
class Report:
    agency: Agency
    index: int  # quarter index from 2021-Q1
    path: Path
    content: FormContent
    quirks: Quirks
    received_at: dt.datetime
    invalid: str = ""
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------- catalog
def agencies_for(count: int) -> list[Agency]:
    """`count` agencies in synthetic provinces of AGENCIES_PER_PROVINCE: the province People's
    Committee office, its departments, then communes and wards."""
    out: list[Agency] = []
    rng = random.Random(20260101)
    p = 0
    while len(out) < count:
        prov = f"BX{p + 1:02d}"
        pname = PROVINCES[p % len(PROVINCES)] + (f" {p // len(PROVINCES) + 1}" if p >= len(PROVINCES) else "")
        members = [Agency(f"{prov}-UBND", f"Văn phòng UBND tỉnh {pname}", prov, "people_committee", "province", 4.0)]
        for short, name in DEPARTMENTS:
            members.append(
                Agency(f"{prov}-SO-{short}", f"{name} tỉnh {pname}", prov, "department", "province", rng.uniform(0.8, 2.5))
            )
        taken: set[str] = set()
        names = [f"{a} {b}" for a in COMMUNE_FIRST for b in COMMUNE_SECOND if a != b]
        rng.shuffle(names)
        for i in range(AGENCIES_PER_PROVINCE - len(members)):
            commune = names[i]
            ward = i % 5 == 0
            code = f"{prov}-{'PHUONG' if ward else 'XA'}-{slug(commune)}"
            while code in taken:  # "Hưng Thạnh" and "Hưng Thành" fold to the same code
                code += "2"
            taken.add(code)
            members.append(
                Agency(
                    code,
                    f"UBND {'phường' if ward else 'xã'} {commune}",
                    prov,
                    "people_committee",
                    "commune",
                    rng.uniform(0.3, 1.2),
                )
            )
        out.extend(members[: count - len(out)])
        p += 1
    return out


def provinces_of(agencies: Iterable[Agency]) -> list[str]:
    return sorted({a.province for a in agencies})


def write_catalog(repo_catalog: Path, target: Path, agencies: list[Agency]) -> Path:
    """The repository catalog, plus the synthetic provinces and agencies (org_units.csv, with a
    calendar in calendars.csv from 2021) and, per province, a copy of the Ngã Năm 2021-2030 plan
    (52 targets, ramps and per-level targets) issued by that province."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(repo_catalog, target)
    provinces = provinces_of(agencies)
    with open(target / "org_units.csv", encoding="utf-8", newline="") as handle:
        columns = next(csv.reader(handle))
    note = "bench/run.py: đơn vị giả lập / synthetic unit"
    rows = []
    for p, prov in enumerate(provinces):
        pname = PROVINCES[int(prov[2:]) - 1 if int(prov[2:]) <= len(PROVINCES) else 0]
        rows.append(
            {"code": prov, "name_vi": f"Tỉnh {pname} (giả lập)", "name_en": f"Synthetic province {p + 1}",
             "unit_type": "province", "admin_level": "province", "parent_code": "", "jurisdiction_code": prov,
             "reporting_authority": "", "reports": "false", "valid_from": "2000-01-01", "valid_to": "",
             "successor_code": "", "note": note}
        )  # fmt: skip
    for a in agencies:
        rows.append(
            {"code": a.code, "name_vi": a.name, "name_en": f"Synthetic {a.unit_type} {a.code}",
             "unit_type": a.unit_type, "admin_level": a.admin_level, "parent_code": a.province,
             "jurisdiction_code": a.province, "reporting_authority": a.province, "reports": "true",
             "valid_from": "2000-01-01", "valid_to": "", "successor_code": "", "note": note}
        )  # fmt: skip
    with open(target / "org_units.csv", "a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    with open(target / "calendars.csv", encoding="utf-8", newline="") as handle:
        cal_columns = next(csv.reader(handle))
    with open(target / "calendars.csv", "a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=cal_columns)
        for prov in provinces:
            writer.writerow(
                {"authority": prov, "name_vi": f"UBND tỉnh {prov} (giả lập)", "due_day": DUE_DAY,
                 "cutoff_day": CUTOFF_DAY, "timezone": "Asia/Ho_Chi_Minh", "collects_from": f"{FIRST_YEAR}-01-01",
                 "collects_to": "", "source": "bench/run.py: lịch giả lập / synthetic calendar"}
            )  # fmt: skip
    plan = (repo_catalog / "plans" / "ngan-nam-2021-2030.yaml").read_text(encoding="utf-8")
    for prov in provinces:
        text = plan.replace("id: ngan-nam-2021-2030", f"id: bench-{prov.lower()}-2021-2030").replace(
            "issuer: NN", f"issuer: {prov}"
        )
        (target / "plans" / f"bench-{prov.lower()}-2021-2030.yaml").write_text(text, encoding="utf-8")
    return target


def form_constraints(catalog_dir: Path) -> tuple[list[dict], dict[str, set[str]]]:
    """Data elements in dependency order, and for each element the elements it must not exceed:
    its "of which" parent and, for a ratio indicator's numerator, the denominator."""
    with open(catalog_dir / "data_elements.csv", encoding="utf-8") as handle:
        elements = list(csv.DictReader(handle))
    upper: dict[str, set[str]] = {e["code"]: set() for e in elements}
    for e in elements:
        if e["parent_code"]:
            upper[e["code"]].add(e["parent_code"])
    for path in sorted((catalog_dir / "indicators").glob("*.csv")):
        with open(path, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("method") == "ratio" and row.get("numerator") in upper and row.get("denominator") in upper:
                    upper[row["numerator"]].add(row["denominator"])
    ordered, done = [], set()
    pending = list(elements)
    while pending:
        for e in list(pending):
            if upper[e["code"]] <= done:
                ordered.append(e)
                done.add(e["code"])
                pending.remove(e)
    return ordered, upper


# ---------------------------------------------------------------------------------- figures
class Series:
    """One agency's true figures, quarter by quarter (flows per quarter, stocks at quarter end)."""

    def __init__(self, agency: Agency, elements: list[dict], upper: dict[str, set[str]], quarters: int, seed: int):
        rng = random.Random(f"{seed}/{agency.code}")
        self.kind = {e["code"]: e["kind"] for e in elements}
        self.value_type = {e["code"]: e["value_type"] for e in elements}
        nil = set(rng.sample(NIL_CANDIDATES, rng.choice([0, 0, 1, 2])))
        # Children of a nil root are nil too (all zeros over the whole history).
        for e in elements:
            if upper[e["code"]] & nil:
                nil.add(e["code"])
        self.nil = nil
        share = {e["code"]: rng.uniform(0.45, 0.95) for e in elements}
        base = {code: rng.uniform(lo, hi) * agency.size for code, (lo, hi) in BASE.items()}
        self.q: list[dict[str, float]] = []
        previous: dict[str, float] = {}
        for k in range(quarters):
            year, quarter = quarter_of(k)
            growth = 1.04 ** (year - FIRST_YEAR)
            season = (0.85, 1.05, 1.0, 1.15)[quarter - 1]
            v: dict[str, float] = {}
            for e in elements:
                code, kind = e["code"], e["kind"]
                if code in nil:
                    v[code] = 0
                    continue
                if code == "HSO.05":
                    v[code] = v["HSO.03"] - v["HSO.04"]
                    continue
                bounds = upper[code]
                if kind == "mean":
                    v[code] = round(max(2.0, base.get(code, 20.0) * rng.uniform(0.85, 1.15)), 1)
                elif bounds:
                    if code == "HSO.04":
                        frac = rng.uniform(0.9, 0.995)
                    else:
                        share[code] = min(1.0, max(0.05, share[code] + rng.uniform(-0.02, 0.03)))
                        frac = share[code]
                    v[code] = math.floor(min(v[b] for b in bounds) * frac)
                elif kind == "flow":
                    raw = base.get(code, rng.uniform(10, 100)) * growth * season * rng.uniform(0.9, 1.1)
                    v[code] = round(raw, 1) if e["value_type"] == "money" else max(1, round(raw))
                else:  # stock: a slow random walk
                    start = previous.get(code, base.get(code, rng.uniform(10, 100)))
                    v[code] = max(1, round(start * rng.uniform(0.99, 1.04)))
            self.q.append(v)
            previous = v

    def window(self, index: int) -> dict[str, float]:
        """The report window collected in quarter `index`: Q1, H1 (cumulative), Q3, Y (cumulative)."""
        _, quarter = quarter_of(index)
        first = index - quarter + 1
        span = {1: [index], 2: [first, first + 1], 3: [index], 4: [first, first + 1, first + 2, first + 3]}[quarter]
        out: dict[str, float] = {}
        for code, kind in self.kind.items():
            if kind == "flow":
                total = sum(self.q[i][code] for i in span)
                out[code] = round(total, 1) if self.value_type[code] == "money" else total
            elif kind == "stock":
                out[code] = self.q[index][code]
            else:
                weights = [self.q[i]["HSO.01"] for i in span]
                values = [self.q[i][code] for i in span]
                total = sum(weights)
                out[code] = round(sum(w * x for w, x in zip(weights, values, strict=True)) / total, 1) if total else values[-1]
        return out


def messy(code: str, value: float, nil: bool, rng: random.Random) -> object:
    """How a person might type the value."""
    if nil and value == 0:
        return rng.choice(NIL_TEXTS)
    r = rng.random()
    if r > 0.15:
        return value
    if isinstance(value, float) and not float(value).is_integer():
        return format_vn(value)  # "1.234,5" / "12,5"
    value = int(value)
    if value >= 1000:
        return rng.choice([format_vn(value), f"{value:,}".replace(",", " "), format_vn(value) + " "])
    if value < 100 and r < 0.02:
        return f"{value}%"  # "85%" reads as 85
    return str(value)


def make_reports(
    agencies: list[Agency], catalog_dir: Path, raw: Path, indexes: Iterable[int], quarters_total: int, seed: int,
    invalid_share: float = 0.01,
) -> list[Report]:  # fmt: skip
    """Report specs (not yet written) for every agency and quarter index."""
    elements, upper = form_constraints(catalog_dir)
    labels = {e["code"]: (("– " if e["parent_code"] else "") + e["name_vi"], e["unit"]) for e in elements}
    series = {a.code: Series(a, elements, upper, quarters_total, seed) for a in agencies}
    reports: list[Report] = []
    indexes = list(indexes)
    for k in indexes:
        year, quarter = quarter_of(k)
        code = window_code(year, quarter)
        due = due_date(year, quarter)
        for a in agencies:
            rng = random.Random(f"{seed}/{a.code}/{k}")
            s = series[a.code]
            true = s.window(k)
            figures = {c: messy(c, x, c in s.nil, rng) for c, x in true.items()}
            order = list(figures)
            if rng.random() < 0.1:
                rng.shuffle(order)
            late = rng.random() < 0.04
            signed = due + dt.timedelta(days=rng.randint(1, 10) if late else -rng.randint(0, 9))
            received = dt.datetime.combine(signed, dt.time(rng.randint(7, 16), rng.choice([0, 15, 30, 45])))
            preparer = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
            quirks = Quirks(
                title_rows=rng.choice([0, 1, 2, 3, 3, 4]),
                column_order=rng.sample(FIGURE_HEADER, len(FIGURE_HEADER)) if rng.random() < 0.15 else None,
                extra_column="Số liệu kỳ trước" if rng.random() < 0.1 else None,
                blank_row_after=rng.randint(3, 60) if rng.random() < 0.2 else None,
                figures_sheet_first=rng.random() < 0.2,
                extra_sheet="Hướng dẫn" if rng.random() < 0.1 else None,
                nfd=rng.random() < 0.2,
                lowercase_keys=rng.random() < 0.1,
                info_label_column=1 if rng.random() < 0.1 else 0,
                engine="xlsxwriter" if rng.random() < 0.5 else "openpyxl",
            )
            content = FormContent(
                agency_code=a.code,
                agency_name=a.name if rng.random() > 0.1 else "  " + a.name.upper() + " ",
                period_label=window_label(year, quarter, rng),
                report_date=signed,
                figures=figures,
                labels=labels,
                preparer=preparer,
                contact=f"0{rng.randint(200, 299)} {rng.randint(3800, 3899)} {rng.randint(100, 999)}",
                include_codes=order,
            )
            path = raw / code / f"{a.code}_{code}.xlsx"
            reports.append(Report(a, k, path, content, quirks, received, meta={"true": true}))
    # About 1% invalid on purpose, never the first agency (the one-workbook baseline and the
    # touched workbook are taken from the valid ones).
    candidates = [r for r in reports if r.agency is not agencies[0]]
    count = round(len(reports) * invalid_share) if len(reports) >= 50 else 0
    rng = random.Random(f"{seed}/invalid/{indexes[:1]}")
    for i, report in enumerate(rng.sample(candidates, count) if count else []):
        kind = INVALID_KINDS[i % len(INVALID_KINDS)]
        report.invalid = kind
        true, figures = report.meta["true"], dict(report.content.figures)
        if kind == "ofwhich_HSO02_gt_HSO01":
            figures["HSO.02"] = true["HSO.01"] + rng.randint(1, 50)
        elif kind == "negative_count":
            figures["KSH.02"] = -max(1, int(true["KSH.02"]))
        else:
            figures["HSO.05"] = true["HSO.05"] + rng.randint(1, 9)
        report.content.figures = figures
    return reports


def write_report(report: Report) -> Path:
    return write_form(report.path, report.content, report.quirks)


def write_receipts(raw: Path, reports: list[Report]) -> None:
    """<raw>/receipts.csv: the official receipt times (so timeliness is not 'received when first seen').
    A register grows as a clerk keeps it: the rows already there stay as they are (a receipt given
    again is changed in its place), the new receipts are added at the end (by file name)."""
    path = raw / "receipts.csv"
    known: dict[str, str] = {}
    if path.exists():
        with open(path, encoding="utf-8") as handle:
            known = {row["file_name"]: row["received_at"] for row in csv.DictReader(handle)}
    added = {r.path.name: r.received_at.isoformat(timespec="minutes") for r in reports}
    rows = [(name, added.get(name, at)) for name, at in known.items()]
    rows += sorted((name, at) for name, at in added.items() if name not in known)
    if path.exists() and rows[: len(known)] == list(known.items()):  # nothing changed in place: only appended
        with open(path, "a", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows[len(known) :])
        return
    raw.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "received_at"])
        writer.writerows(rows)
