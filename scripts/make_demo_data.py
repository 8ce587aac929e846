"""Write the demo workbooks of every seed plan's jurisdiction, and their receipt register.

Trần Đề district and Ngã Năm town, 2024:

For every TD and NN reporting unit valid in 2024 (catalog/org_units.csv, reports=true) this
writes the four 2024 reports with pipelines.form_writer (both calendars: due on the 11th):

    <out>/2024-Q1/<AGENCY>_2024-Q1.xlsx   Quý I/2024 (the quarter)
    <out>/2024-H1/<AGENCY>_2024-H1.xlsx   6 tháng đầu năm 2024 (cumulative Q1+Q2)
    <out>/2024-Q3/<AGENCY>_2024-Q3.xlsx   Quý III/2024 (the quarter)
    <out>/2024-Y/<AGENCY>_2024-Y.xlsx     Năm 2024 (cumulative Q1..Q4)
    <out>/receipts.csv                    file_name,received_at (local time), both jurisdictions

Values are simulated per calendar quarter first and each report is built from them:
flows add up over the window, stocks are the level at its end, means (TGI.*) are the
HSO.01-weighted mean of the quarters' means, so Q2 = H1 - Q1 and Q4 = Y - H1 - Q3 are
exactly recoverable. Every "of which" child <= its parent and HSO.04 + HSO.05 == HSO.03.
Each jurisdiction draws from its own random.Random, so either can change without moving the other.

Trần Đề (TD, 20 units, seed): the messy one, quirks (a)-(j) below and these special files:
  late        TD-XA-VIENAN 2024-H1, received 14/06/2024 (due 11/06/2024)
  invalid     TD-PHONG-KTHT 2024-Q3: HSO.02 > HSO.01 and HSO.04 + HSO.05 != HSO.03
  resubmitted TD-XA-TAIVAN 2024-Q1: GDT.01 typed 10x too high, corrected in *_lan2.xlsx two days later
  missing     TD-XA-DAIAN2 sends no 2024-Q3
  unreadable  TD-PHONG-VHTT 2024-Y: garbage bytes, not a zip (its only year report)

Ngã Năm (NN, 14 units, seed + 2): all files valid and on time, a few light quirks, values shaped
for the scorecard of catalog/plans/ngan-nam-2021-2030.yaml (NN_SHARES: each "of which" share
moves from its Q1 level to its Q4 level). The town starts 2024 below several 2021-2025 targets
(online dossiers, online payment, digitized results) and reaches them by the year's end; others
were met all year (e-transfer, portal integration, satisfaction with service); no re-supply,
land-sector satisfaction, published internal procedures and e-ID 100% stay short; self-financing
public service units stall at 15%. Laggards (NN_LAG): NN-XA-VINHQUOI and NN-XA-MYQUOI (digitized
results ~35-45%, online payment ~10%), NN-PHONG-QLDT (online dossiers ~30%).

The other three plans (and the two-tier reform of 1/7/2025) get workbooks too, see EXTRA_DEMO; each
jurisdiction-year has its own random.Random, so the 2024 files above stay byte-identical:
  Cần Thơ 2022 (CT, seed 003, due the 10th): 7 city agencies, 9 district PCs, 6 sample communes x 4 reports,
      plus CT-SO-NOIVU's 2021 year report (the baseline of CT-17/CT-18). Missing CT-VINHTHANH 2022-Q3, late
      CT-CODO-XA-THOIHUNG 2022-H1, invalid CT-SO-TAICHINH 2022-Q1 (TTH.06 > TTH.05); laggards in SHARES/EXTRA_LAG.
  Trần Đề, Ngã Năm 2025-Q1/H1: their last reports before the district tier ends (stocks continue from 2024-Q4;
      TD-PHONG-NNMT reports from 1/3/2025).
  Tây Hòa 2025-Q1/H1 (TH, seed 001, assumed calendar): 8 offices, 11 communes. Resubmitted TH-XA-HOADONG 2025-Q1
      (HSO.01 typed 10x, *_lan2.xlsx), missing TH-XA-SONTHANHTAY 2025-H1, late TH-PHONG-KTHT 2025-H1.
  Hớn Quản 2025-Q1/H1 (HQ, assumed): Minh Đức's two predecessor communes until 30/6/2025.
  Minh Đức 2025-Q3/Y (MD, seed 002, Đồng Nai's calendar): the commune's five offices from 1/7/2025; late
      MD-TT-DVTH 2025-Q3. A unit that starts mid-year reports flows from its start (its Y = its Q3 + Q4).
  Đắk Lắk 2025-Q3/Y (DL): the four new communes that succeed Tây Hòa's; invalid DL-XA-SONTHANH 2025-Y
      (HSO.04 + HSO.05 != HSO.03).
Every report is checked before it is written (check_figures: "of which" <= parent, HSO.04 + HSO.05 == HSO.03,
each ratio's numerator <= its denominator), the deliberate problems are applied after the check.

Re-running first deletes the *.xlsx in every period folder (YYYY-Q1/H1/Q3/Y) under <out>.
Usage (from the repo root): .venv/bin/python scripts/make_demo_data.py [--out data/raw] [--seed 2024]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import random
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.form_writer import FormContent, Formula, Quirks, write_form  # noqa: E402
from pipelines.periods import Period  # noqa: E402

YEAR = 2024
DUE_DAY = 11  # catalog/calendars.csv: TD and NN reports are due on the 11th of the window's last month
REPORTS = {"Q1": (0,), "H1": (0, 1), "Q3": (2,), "Y": (0, 1, 2, 3)}  # report -> calendar quarters (0-based)
Figures = dict[str, float]

# Performance spread: most units are on track, these lag.
LAG_PAYMENT = {"TD-XA-VIENAN", "TD-XA-DAIAN2", "TD-PHONG-NNPTNT"}
LAG_DIGITIZATION = {"TD-XA-THANHTHOITHUAN", "TD-XA-DAIAN2", "TD-PHONG-LDTBXH"}
LAG_ON_TIME = {"TD-PHONG-TNMT"}
LAG_LEGAL = "TD-PHONG-TNMT"  # issues one legal document incorrectly in Q3 (TCH.02 < TCH.01)

# Who reports which elements beyond the common set (HSO, TTH, KQS, GDT, PAK, KSH, TGI, CQS.01/02/13/14, CVU.03/04).
EXTRA_ELEMENTS: dict[str, str] = {
    "TD-UBND": "TCH.01 TCH.02 TCH.03 TCH.04 CQS.03 CQS.04 CQS.07 CQS.08 CQS.09 CQS.10 CQS.11 CQS.12",
    "TD-PHONG-TUPHAP": "TCH.01 TCH.02 TCH.03 TCH.04 TCH.05 TCH.06",
    "TD-PHONG-TNMT": "TCH.01 TCH.02 KSH.03 KSH.04",
    "TD-PHONG-KTHT": "KSH.03 KSH.04",
    "TD-PHONG-TCKH": "KSH.03 KSH.04 TCC.01 TCC.02 TCC.03 TCC.04 TCC.05",
    "TD-PHONG-NOIVU": "BMA.01 BMA.02 BMA.03 CQS.17 CQS.18 CDD.01 CDD.02 CDD.03 CDD.04",
    "department": "CQS.05 CQS.06",
    "commune": "CVU.01 CVU.02 CQS.09 CQS.10 CQS.15 CQS.16 KSH.07 KSH.08",
    "NN-UBND": "TCH.01 TCH.02 TCH.03 TCH.04 CQS.03 CQS.04 CQS.07 CQS.08 CQS.09 CQS.10 CQS.11 CQS.12",
    "NN-PHONG-TUPHAP": "TCH.01 TCH.02 TCH.03 TCH.04 TCH.05 TCH.06",
    "NN-PHONG-QLDT": "KSH.03 KSH.04",
    "NN-PHONG-TCKH": "KSH.03 KSH.04 TCC.01 TCC.02 TCC.03 TCC.04 TCC.05",
    "NN-PHONG-NOIVU": "BMA.01 BMA.02 BMA.03 CQS.17 CQS.18 CDD.01 CDD.02 CDD.03 CDD.04",
}

# Ngã Năm: "of which" share of the parent in Q1 and in Q4 (linear in between, plus a fixed
# per-unit offset of +-3 points): (town level Q1, Q4, commune level Q1, Q4).
NN_SHARES: dict[str, tuple[float, float, float, float]] = {
    "HSO.02": (0.46, 0.57, 0.44, 0.55),  # online dossiers, target >= 50
    "HSO.07": (0.88, 0.94, 0.86, 0.92),  # electronic transfer, >= 80: met all year
    "HSO.10": (0.70, 0.735, 0.69, 0.725),  # no re-supply, >= 80: too slow
    "KQS.02": (0.66, 0.82, 0.67, 0.82),  # digitized results, ramp 80 (town) / 75 (commune) in 2024
    "KQS.04": (0.60, 0.78, 0.55, 0.74),
    "GDT.02": (0.27, 0.36, 0.28, 0.37),  # online payments, >= 30
    "TTH.03": (0.74, 0.87, 0.72, 0.86),  # fully online procedures, >= 80
    "TTH.04": (0.90, 0.97, 0.88, 0.96),  # on the national portal, >= 80: met all year
    "TTH.06": (0.72, 0.86, 0.70, 0.85),  # online payment offered, >= 80
    "TTH.08": (0.70, 0.88, 0.68, 0.86),  # internal procedures published, >= 90
    "KSH.02": (0.87, 0.915, 0.87, 0.915),  # satisfaction with procedures, >= 90
    "KSH.04": (0.80, 0.84, 0.80, 0.84),  # land sector, >= 85
    "KSH.06": (0.91, 0.95, 0.91, 0.95),  # service, >= 90: met all year
    "CQS.02": (0.78, 0.87, 0.57, 0.68),  # work records online, >= 80 (town) / 60 (commune)
    "CQS.06": (0.38, 0.48, 0.38, 0.48),  # digital inspections, >= 50
    "CVU.02": (0.84, 0.92, 0.84, 0.92),  # commune officials meeting the standard, >= 90
    "CQS.16": (0.47, 0.54, 0.47, 0.54),  # adults with a bank account, > 50
}
NN_LAG: dict[str, dict[str, tuple[float, float]]] = {  # units that will miss the 2025 targets
    "NN-XA-VINHQUOI": {"KQS.02": (0.35, 0.43), "GDT.02": (0.08, 0.11), "TTH.06": (0.50, 0.56), "CQS.02": (0.45, 0.50)}
    | {"CVU.02": (0.76, 0.80), "CQS.16": (0.38, 0.41), "HSO.02": (0.36, 0.42)},
    "NN-XA-MYQUOI": {"KQS.02": (0.38, 0.46), "GDT.02": (0.09, 0.13), "TTH.06": (0.55, 0.60), "CQS.02": (0.47, 0.52)},
    "NN-PHONG-QLDT": {"HSO.02": (0.28, 0.34)},
}

# Messy features, each on a few files: (agency, report) -> Quirks.
QUIRKS: dict[tuple[str, str], Quirks] = {
    # (a) numbers typed as Vietnamese text ("1.234", "45.678,5")
    ("TD-XA-LIEUTU", "Q1"): Quirks(vn_text_numbers=("HSO.01", "KQS.01", "KQS.02", "CQS.15", "CQS.16")),
    ("TD-PHONG-TCKH", "H1"): Quirks(vn_text_numbers=("TCC.05", "HSO.01", "CQS.13")),
    # (c) NFD labels and sheet names
    ("TD-XA-THANHTHOIAN", "H1"): Quirks(nfd=True),
    ("TD-PHONG-NOIVU", "Y"): Quirks(nfd=True, vn_text_numbers=("BMA.03",)),
    # (d) columns in another order plus an extra column
    ("TD-PHONG-TNMT", "Q1"): Quirks(
        column_order=("Mã số", "STT", "Nội dung", "Số liệu", "Đơn vị tính", "Ghi chú"), extra_column="Kế hoạch năm 2024"
    ),
    ("TD-XA-VIENAN", "Q3"): Quirks(column_order=("STT", "Nội dung", "Mã số", "Đơn vị tính", "Số liệu", "Ghi chú"), title_rows=1),
    # (e) a blank row inside the table
    ("TD-XA-TRUNGBINH", "Q3"): Quirks(blank_row_after=5),
    ("TD-PHONG-LDTBXH", "H1"): Quirks(blank_row_after=9, title_rows=0),
    # (f) figures sheet first and an extra sheet "Hướng dẫn"
    ("TD-PHONG-NNPTNT", "Q3"): Quirks(figures_sheet_first=True, extra_sheet="Hướng dẫn"),
    ("TD-TT-TRANDE", "Y"): Quirks(figures_sheet_first=True, extra_sheet="Hướng dẫn"),
    # (g) xlsxwriter files where HSO.03 is a formula with a cached value (see FORMULA_HSO03)
    ("TD-PHONG-TCKH", "Q3"): Quirks(engine="xlsxwriter"),
    ("TD-TT-LICHHOITHUONG", "H1"): Quirks(engine="xlsxwriter"),
    # (i) lower-case keys, labels in column B
    ("TD-PHONG-TUPHAP", "H1"): Quirks(lowercase_keys=True, info_label_column=1),
    ("TD-XA-DAIAN2", "Y"): Quirks(lowercase_keys=True, info_label_column=1),
    # Ngã Năm: light quirks only
    ("NN-PHUONG-2", "Q3"): Quirks(vn_text_numbers=("HSO.01", "KQS.01", "CQS.15")),
    ("NN-PHONG-TCKH", "Y"): Quirks(vn_text_numbers=("TCC.05", "HSO.01")),
    ("NN-XA-TANLONG", "H1"): Quirks(nfd=True),
    ("NN-PHONG-VHTT", "Q1"): Quirks(engine="xlsxwriter"),
}
FORMULA_HSO03 = {("TD-PHONG-TCKH", "Q3"), ("TD-TT-LICHHOITHUONG", "H1"), ("NN-PHONG-VHTT", "Q1")}
# (b) "không phát sinh", "-", "x" for elements that did not arise
NOT_ARISEN: dict[tuple[str, str], dict[str, str]] = {
    ("TD-XA-VIENBINH", "Q1"): {"TCH.01": "không phát sinh", "TCH.02": "-", "TCH.03": "x", "TCH.04": "x"},
    ("TD-UBND", "Q3"): {"TCH.05": "không phát sinh", "TCH.06": "-"},
    ("TD-PHONG-VHTT", "H1"): {"KSH.03": "x", "KSH.04": "x"},
}
# (h) period written as a Vietnamese label variant (default: Period.label_vi)
PERIOD_LABELS = {
    ("TD-XA-LICHHOITHUONG", "Q1"): "Quý 1 năm 2024",
    ("TD-XA-THANHTHOITHUAN", "Y"): "Báo cáo năm 2024",
    ("TD-PHONG-KTHT", "H1"): "2024-H1",
}
# (j) workbooks with a 'Nhiệm vụ' sheet
TASK_FILES = {("TD-UBND", "H1"), ("TD-PHONG-NOIVU", "Q3"), ("TD-PHONG-NOIVU", "Y"), ("TD-XA-LIEUTU", "Y")}
# (code, task, due text, first quarter worked on (1-4, 0 = not started), completion date or None)
TASKS = (
    ("NV-01", "Ban hành Kế hoạch cải cách hành chính năm 2024", "Quý I/2024", 1, dt.date(2024, 1, 25)),
    ("NV-02", "Rà soát, đơn giản hóa thủ tục hành chính nội bộ", "Quý III-IV/2024", 3, dt.date(2024, 11, 20)),
    ("NV-03", "Kiểm tra công tác cải cách hành chính tại các cơ quan, đơn vị", "Năm 2024", 2, dt.date(2024, 12, 5)),
    ("NV-04", "Tự đánh giá, chấm điểm Chỉ số cải cách hành chính", "Hàng năm", 4, None),
    ("NV-05", "Tuyên truyền cải cách hành chính trên Trang thông tin điện tử huyện", "Thường xuyên", 1, None),
    ("NV-06", "Triển khai mô hình Bộ phận một cửa hiện đại", "Khi có hướng dẫn của cấp trên", 0, None),
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def reporting_units(jurisdiction: str) -> list[dict[str, str]]:
    """The jurisdiction's units with reports=true that are valid at some time in YEAR."""
    start, end = f"{YEAR}-01-01", f"{YEAR}-12-31"
    return [
        u
        for u in read_csv(ROOT / "catalog" / "org_units.csv")
        if u["jurisdiction_code"] == jurisdiction
        and u["reports"].lower() == "true"
        and u["valid_from"] <= end
        and (not u["valid_to"] or u["valid_to"] >= start)
    ]


def unit_elements(code: str) -> set[str]:
    common = {f"HSO.{i:02d}" for i in range(1, 11)} | {f"TTH.{i:02d}" for i in range(1, 10)}
    common |= {"KQS.01", "KQS.02", "KQS.03", "KQS.04", "GDT.01", "GDT.02", "PAK.01", "PAK.02"}
    common |= {"KSH.01", "KSH.02", "KSH.05", "KSH.06", "TGI.01", "TGI.02", "CQS.01", "CQS.02", "CQS.13", "CQS.14"}
    common |= {"CVU.03", "CVU.04"}
    group = "department" if "-PHONG-" in code else "commune" if code.split("-")[1] in ("XA", "TT", "PHUONG") else ""
    return common | set(EXTRA_ELEMENTS.get(code, "").split()) | set(EXTRA_ELEMENTS.get(group, "").split())


def simulate(code: str, rng: random.Random) -> list[Figures]:
    """Four calendar quarters of values for one unit (flows per quarter, stocks at quarter end)."""
    commune = code.startswith(("TD-XA-", "TD-TT-"))
    size = rng.uniform(0.7, 1.3) * (1.6 if code == "TD-PHONG-TNMT" else 1.0)
    base = (230 if commune else 260 if code == "TD-UBND" else 520) * size

    def part(total: float, lo: float, hi: float) -> int:
        return min(round(total), round(total * rng.uniform(lo, hi)))

    online = rng.uniform(0.5, 0.65)
    late = rng.uniform(0.06, 0.09) if code in LAG_ON_TIME else rng.uniform(0.003, 0.02)
    pay = rng.uniform(0.06, 0.12) if code in LAG_PAYMENT else rng.uniform(0.32, 0.5)
    fee_online = rng.uniform(0.3, 0.4) if code in LAG_PAYMENT else rng.uniform(0.7, 0.85)
    digit = rng.uniform(0.3, 0.42) if code in LAG_DIGITIZATION else rng.uniform(0.78, 0.92)
    stock_digit = rng.uniform(0.12, 0.18) if code in LAG_DIGITIZATION else rng.uniform(0.36, 0.46)
    digit_step = 0.02 if code in LAG_DIGITIZATION else rng.uniform(0.05, 0.07)
    n_proc = rng.randint(25, 45) if commune else rng.randint(32, 45) if code == "TD-UBND" else rng.randint(50, 110)
    eligible, integrated, fees = rng.uniform(0.35, 0.5), rng.uniform(0.85, 1.0), rng.uniform(0.3, 0.45)
    internal, independent = rng.randint(6, 15), rng.uniform(0.1, 0.3)
    results_held = round(base * rng.uniform(9, 14))
    wait, process = rng.uniform(9, 18), rng.uniform(20, 32)
    if code in LAG_DIGITIZATION | LAG_ON_TIME:
        wait, process = wait + 8, process + 6
    officials, leaders = rng.randint(19, 23), rng.randint(4, 6) if commune else rng.randint(2, 4)
    adults, users = round(rng.uniform(8000, 22000)), round(rng.uniform(7000, 10000))
    quarters: list[Figures] = []
    for q in range(4):
        season = (0.9, 1.0, 1.05, 1.15)[q] * rng.uniform(0.9, 1.1)
        v: Figures = {}
        # dossiers (flows)
        v["HSO.01"] = received = round(base * season)
        v["HSO.02"] = part(received, online + 0.03 * q, online + 0.03 * q + 0.05)
        v["HSO.03"] = resolved = part(received, 0.9, 0.99)
        v["HSO.05"] = part(resolved, late * 0.8, late * 1.2)
        v["HSO.04"] = resolved - v["HSO.05"]
        v["HSO.06"] = part(received, 0.1, 0.25)
        v["HSO.07"] = part(v["HSO.06"], 0.85, 0.98)
        v["HSO.08"] = part(received, digit + 0.02 * q, digit + 0.02 * q + 0.04)
        v["HSO.09"] = part(v["HSO.08"], 0.4, 0.6)
        v["HSO.10"] = part(received, 0.6, 0.85)
        v["KQS.03"] = part(resolved, 0.95, 1.0)
        v["KQS.04"] = part(v["KQS.03"], 0.2, 0.35) if code in LAG_DIGITIZATION else part(v["KQS.03"], 0.55, 0.85)
        v["GDT.01"] = part(received, 0.3, 0.5)
        v["GDT.02"] = part(v["GDT.01"], pay + 0.03 * q, pay + 0.03 * q + 0.05)
        v["PAK.01"] = rng.choice((0, 0, 0, 1, 1, 2, 3))
        v["PAK.02"] = v["PAK.01"] - (1 if v["PAK.01"] >= 2 and rng.random() < 0.3 else 0)
        v["KSH.01"] = part(resolved, 0.2, 0.35)
        v["KSH.02"] = part(v["KSH.01"], 0.9, 0.99)
        v["KSH.03"] = part(v["KSH.01"], 0.3, 0.5)
        v["KSH.04"] = part(v["KSH.03"], 0.82, 0.95)
        v["KSH.05"] = part(v["KSH.01"], 0.5, 0.8)
        v["KSH.06"] = part(v["KSH.05"], 0.88, 0.98)
        v["KSH.07"] = rng.randint(40, 120)
        v["KSH.08"] = part(v["KSH.07"], 0.85, 0.97)
        v["TGI.01"] = round(min(40.0, max(5.0, wait - 0.6 * q + rng.uniform(-1, 1))), 1)
        v["TGI.02"] = round(min(40.0, max(10.0, process - 0.8 * q + rng.uniform(-1.5, 1.5))), 1)
        # e-government, legal documents, inspections (flows)
        v["CQS.01"] = round(base * 0.8 * season)
        v["CQS.02"] = part(v["CQS.01"], 0.55, 0.8) if commune else part(v["CQS.01"], 0.75, 0.95)
        v["CQS.13"] = part(v["CQS.01"] * 1.5, 0.75, 1.0)
        v["CQS.14"] = part(v["CQS.13"], 0.92, 1.0)
        v["CQS.05"] = rng.randint(1, 5)
        v["CQS.06"] = part(v["CQS.05"], 0.3, 0.8)
        v["CQS.09"] = rng.randint(4, 7)
        v["CQS.10"] = part(v["CQS.09"], 0.4, 0.8)
        v["TCH.01"] = 2 if code == LAG_LEGAL and q == 2 else rng.randint(0, 1 if code != "TD-UBND" else 3)
        v["TCH.02"] = v["TCH.01"] - (1 if code == LAG_LEGAL and q == 2 else 0)
        v["TCH.03"] = rng.randint(0, 3)
        v["TCH.04"] = v["TCH.03"]
        v["TCH.05"] = rng.randint(2, 6)
        v["TCH.06"] = v["TCH.05"] - (1 if q == 3 else 0)  # one draft still under appraisal at year end
        v["CDD.03"] = rng.randint(2, 4) if q == 0 else rng.randint(4, 9)
        v["CDD.04"] = v["CDD.03"] - rng.randint(0, 2)
        v["TCC.05"] = rng.randint(380_000, 460_000) / 10  # triệu đồng, one decimal
        # stocks at the end of the quarter
        n_proc += rng.choice((0, 0, 1, 2))
        v["TTH.01"] = n_proc
        v["TTH.02"] = round(n_proc * eligible)
        v["TTH.03"] = part(v["TTH.02"], min(0.98, 0.75 + 0.07 * q), min(1.0, 0.8 + 0.07 * q))
        v["TTH.04"] = part(v["TTH.03"], integrated, 1.0)
        v["TTH.05"] = round(n_proc * fees)
        v["TTH.06"] = round(v["TTH.05"] * min(1.0, fee_online + 0.04 * q))
        v["TTH.07"] = internal
        v["TTH.08"] = round(internal * min(1.0, 0.75 + 0.08 * q))
        v["TTH.09"] = round(n_proc * independent)
        results_held += round(v["KQS.03"] * rng.uniform(0.6, 0.8))
        v["KQS.01"] = results_held
        v["KQS.02"] = round(results_held * min(0.98, stock_digit + digit_step * q))
        v["CVU.01"], v["CVU.02"] = officials, officials - (2 if q < 2 else 1)
        v["CVU.03"], v["CVU.04"] = leaders, 1 if q >= 2 and leaders >= 4 else 0
        v["CQS.03"], v["CQS.04"] = 9, 6 + q // 2
        v["CQS.07"] = 132 + 4 * q
        v["CQS.08"] = round(v["CQS.07"] * (0.8 + 0.04 * q))
        users = round(users * rng.uniform(1.05, 1.1))
        v["CQS.11"], v["CQS.12"] = users, round(users * (0.55 + 0.08 * q))
        adults += rng.randint(20, 80)
        v["CQS.15"], v["CQS.16"] = adults, round(adults * (0.56 + 0.03 * q + rng.uniform(0, 0.02)))
        v["CQS.17"], v["CQS.18"] = 12, 11 if q < 3 else 12
        v["BMA.01"], v["BMA.02"], v["BMA.03"] = 12, 12, 1874 - 4 * q - rng.randint(0, 3)
        v["CDD.01"], v["CDD.02"] = 21, (8, 11, 14, 17)[q]
        v["TCC.01"], v["TCC.02"], v["TCC.03"], v["TCC.04"] = 72 - q // 2, 4 + q // 2, 3, 2
        keep = unit_elements(code)
        quarters.append({k: x for k, x in v.items() if k in keep})
    return quarters


def simulate_nn(code: str, rng: random.Random) -> list[Figures]:
    """Four calendar quarters of one Ngã Năm unit: shares follow NN_SHARES / NN_LAG from Q1 to Q4."""
    commune = code.split("-")[1] in ("XA", "PHUONG")
    size = rng.uniform(0.8, 1.2) * (1.3 if code == "NN-PHONG-QLDT" else 1.0)
    base = (240 if commune else 250 if code == "NN-UBND" else 480) * size
    lag = NN_LAG.get(code, {})
    paths = {k: v[2:] if commune else v[:2] for k, v in NN_SHARES.items()} | lag
    offset = {k: 0.0 if k in lag else rng.uniform(-0.03, 0.03) for k in paths}

    def share(key: str, q: int, noise: float = 0.0) -> float:
        start, end = paths[key]
        return min(1.0, max(0.0, start + (end - start) * q / 3 + offset[key] + rng.uniform(-noise, noise)))

    def part(total: float, fraction: float) -> int:
        return min(round(total), round(total * fraction))

    n_proc = rng.randint(25, 40) if commune else rng.randint(32, 42) if code == "NN-UBND" else rng.randint(50, 95)
    eligible, fees, independent = rng.uniform(0.38, 0.5), rng.uniform(0.3, 0.42), rng.uniform(0.1, 0.3)
    internal, results_held = rng.randint(7, 14), round(base * rng.uniform(9, 13))
    wait, process = rng.uniform(9, 16), rng.uniform(20, 30)
    officials, leaders = rng.randint(19, 23), rng.randint(4, 6) if commune else rng.randint(2, 4)
    adults, users = round(rng.uniform(5500, 9500)), round(rng.uniform(5200, 6800))
    quarters: list[Figures] = []
    for q in range(4):
        season = (0.9, 1.0, 1.05, 1.15)[q] * rng.uniform(0.93, 1.07)
        v: Figures = {}
        v["HSO.01"] = received = round(base * season)
        v["HSO.02"] = part(received, share("HSO.02", q, 0.01))
        v["HSO.03"] = resolved = part(received, rng.uniform(0.92, 0.98))
        v["HSO.05"] = part(resolved, rng.uniform(0.004, 0.015))
        v["HSO.04"] = resolved - v["HSO.05"]
        v["HSO.06"] = part(received, rng.uniform(0.12, 0.25))
        v["HSO.07"] = part(v["HSO.06"], share("HSO.07", q, 0.01))
        v["HSO.08"] = part(received, share("KQS.02", q, 0.02) + 0.05)
        v["HSO.09"] = part(v["HSO.08"], rng.uniform(0.4, 0.6))
        v["HSO.10"] = part(received, share("HSO.10", q, 0.01))
        v["KQS.03"] = part(resolved, rng.uniform(0.95, 1.0))
        v["KQS.04"] = part(v["KQS.03"], share("KQS.04", q, 0.02))
        v["GDT.01"] = part(received, rng.uniform(0.35, 0.45))
        v["GDT.02"] = part(v["GDT.01"], share("GDT.02", q, 0.01))
        v["PAK.01"] = rng.choice((0, 0, 1, 1, 2))
        v["PAK.02"] = v["PAK.01"]
        v["KSH.01"] = part(resolved, rng.uniform(0.22, 0.32))
        v["KSH.02"] = part(v["KSH.01"], share("KSH.02", q, 0.01))
        v["KSH.03"] = part(v["KSH.01"], rng.uniform(0.35, 0.5))
        v["KSH.04"] = part(v["KSH.03"], share("KSH.04", q, 0.01))
        v["KSH.05"] = part(v["KSH.01"], rng.uniform(0.5, 0.75))
        v["KSH.06"] = part(v["KSH.05"], share("KSH.06", q, 0.01))
        v["KSH.07"] = rng.randint(40, 110)
        v["KSH.08"] = part(v["KSH.07"], rng.uniform(0.86, 0.95))
        v["TGI.01"] = round(wait - 0.5 * q + rng.uniform(-0.8, 0.8), 1)
        v["TGI.02"] = round(process - 0.7 * q + rng.uniform(-1.2, 1.2), 1)
        v["CQS.01"] = round(base * 0.8 * season)
        v["CQS.02"] = part(v["CQS.01"], share("CQS.02", q, 0.01))
        v["CQS.13"] = part(v["CQS.01"] * 1.5, rng.uniform(0.8, 1.0))
        v["CQS.14"] = part(v["CQS.13"], rng.uniform(0.93, 1.0))
        v["CQS.05"] = rng.randint(3, 6)
        v["CQS.06"] = part(v["CQS.05"], share("CQS.06", q, 0.03))
        v["CQS.09"] = rng.randint(4, 6)
        v["CQS.10"] = part(v["CQS.09"], 0.5 + 0.1 * q)
        v["TCH.01"] = v["TCH.02"] = rng.randint(1, 3) if code == "NN-UBND" else rng.randint(0, 1)
        v["TCH.03"] = v["TCH.04"] = rng.randint(1, 3)
        v["TCH.05"] = v["TCH.06"] = rng.randint(2, 5)
        v["CDD.03"] = rng.randint(2, 6)
        v["CDD.04"] = v["CDD.03"] - rng.randint(0, 1)
        v["TCC.05"] = rng.randint(210_000, 250_000) / 10
        # stocks at the end of the quarter
        n_proc += rng.choice((0, 0, 1))
        v["TTH.01"], v["TTH.02"] = n_proc, round(n_proc * eligible)
        v["TTH.03"] = part(v["TTH.02"], share("TTH.03", q))
        v["TTH.04"] = part(v["TTH.03"], share("TTH.04", q))
        v["TTH.05"] = round(n_proc * fees)
        v["TTH.06"] = part(v["TTH.05"], share("TTH.06", q))
        v["TTH.07"], v["TTH.08"] = internal, part(internal, share("TTH.08", q))
        v["TTH.09"] = round(n_proc * independent)
        results_held += round(v["KQS.03"] * rng.uniform(0.6, 0.8))
        v["KQS.01"], v["KQS.02"] = results_held, part(results_held, share("KQS.02", q))
        v["CVU.01"], v["CVU.02"] = officials, part(officials, share("CVU.02", q))
        v["CVU.03"], v["CVU.04"] = leaders, 1 if q >= 2 and leaders >= 5 else 0
        v["CQS.03"], v["CQS.04"] = 7, (5, 5, 6, 6)[q]
        v["CQS.07"] = 118 + 3 * q
        v["CQS.08"] = round(v["CQS.07"] * (0.76, 0.80, 0.84, 0.87)[q])
        users = round(users * rng.uniform(1.04, 1.08))
        v["CQS.11"], v["CQS.12"] = users, round(users * (0.72, 0.75, 0.78, 0.805)[q])
        adults += rng.randint(10, 40)
        v["CQS.15"], v["CQS.16"] = adults, part(adults, share("CQS.16", q))
        v["CQS.17"], v["CQS.18"] = 7, 6 if q < 2 else 7
        v["BMA.01"], v["BMA.02"], v["BMA.03"] = 10, (9, 9, 10, 10)[q], 612 - 2 * q - rng.randint(0, 2)
        v["CDD.01"], v["CDD.02"] = 14, (6, 8, 10, 13)[q]
        v["TCC.01"], v["TCC.02"], v["TCC.03"], v["TCC.04"] = (40, 40, 39, 39)[q], 6, 2, 1
        keep = unit_elements(code)
        quarters.append({k: x for k, x in v.items() if k in keep})
    return quarters


def build_report(quarters: list[Figures], report: str, kinds: dict[str, str]) -> Figures:
    """One report window from quarter values: flows summed, stocks last, means HSO.01-weighted."""
    window = [quarters[i] for i in REPORTS[report]]
    out: Figures = {}
    for code in window[-1]:
        kind = kinds[code]
        if kind == "stock":
            out[code] = window[-1][code]
        elif kind == "mean":
            weight = sum(q["HSO.01"] for q in window)
            out[code] = sum(q[code] * q["HSO.01"] for q in window) / weight
        elif code == "TCC.05":
            out[code] = round(sum(q[code] for q in window), 1)
        else:
            out[code] = sum(q[code] for q in window)
    return out


def tasks_at(report: str) -> list[dict[str, object]]:
    """Task progress as reported at the end of a window."""
    quarter = REPORTS[report][-1] + 1
    end = dt.date(YEAR, quarter * 3, DUE_DAY - 1)
    rows = []
    for code, task, due, start, done in TASKS:
        if done and done <= end:
            status, note = "Đã hoàn thành", ""
        elif start and start <= quarter:
            status, note, done = "Đang thực hiện", "Đúng tiến độ" if code != "NV-04" else "", None
        else:
            status, note, done = "chua thuc hien", "Chờ hướng dẫn" if start == 0 else "", None
        rows.append({"code": code, "task": task, "due": due, "status": status, "done": done, "note": note})
    return rows


def freeze(path: Path, when: dt.datetime) -> None:
    """Make a written workbook byte-reproducible: zip entry times and document dates = when."""
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    stamp = (when - dt.timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ").encode()  # local (UTC+7) -> UTC
    with zipfile.ZipFile(path, "w") as target:
        for name, data in members:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            target.writestr(zipfile.ZipInfo(name, when.timetuple()[:6]), data, zipfile.ZIP_DEFLATED)


# ------------------------------------------------------------------ the other plans' jurisdictions
# Every other seed plan gets workbooks for the years it covers, each jurisdiction-year drawn from its own
# random.Random (seeded by "<seed>-<jurisdiction>-<year>"), so none moves the Trần Đề / Ngã Năm 2024 files.
# Reports written per unit are the ones the catalog expects (the unit is in force on its authority's due
# day and existed on the first day of the window's last month, calendars.csv/org_units.csv); a unit that
# starts mid-year reports flows only from its start (its Y = its Q3 + Q4).
EXTRA_DEMO: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("CT", 2021, ("Y",)),  # only CT-SO-NOIVU (EXTRA_ONLY): the 2021 baseline of units and payroll (CT-17, CT-18)
    ("CT", 2022, ("Q1", "H1", "Q3", "Y")),  # Cần Thơ 2022 (seed 003): city agencies, 9 districts, 6 sample communes
    ("TD", 2025, ("Q1", "H1")),  # Trần Đề and Ngã Năm until the district tier ends (30/6/2025)
    ("NN", 2025, ("Q1", "H1")),
    ("TH", 2025, ("Q1", "H1")),  # Tây Hòa 2021-2025 (seed 001), its last year before the reform
    ("HQ", 2025, ("Q1", "H1")),  # Minh Đức's predecessor communes (assumed) before 1/7/2025
    ("MD", 2025, ("Q3", "Y")),  # Minh Đức (seed 002) from 1/7/2025, on Đồng Nai's calendar
    ("DL", 2025, ("Q3", "Y")),  # the new communes of former Tây Hòa (Đắk Lắk) from 1/7/2025
)
EXTRA_ONLY = {("CT", 2021): {"CT-SO-NOIVU"}}

# "of which" share of the parent in the first and last calendar quarter of the year (linear in between,
# plus a fixed per-unit offset of +-3 points), per level ("province", "district", "commune") or for all ("*").
Path2 = dict[str, tuple[float, float]]
SHARES: dict[tuple[str, int], dict[str, Path2]] = {
    # Cần Thơ 2022: digitized results 50/40/35 by level, online payment offered >= 50 and paid >= 25,
    # full online 100, portal >= 50, online dossiers >= 30, satisfaction 85/75/85/80, internal procedures 50,
    # no re-supply 30, e-ID 30, systems 30, work records 90/70/40, ISO 100, inspected 30, officials 100.
    ("CT", 2022): {
        "HSO.02": {"*": (0.22, 0.34)},
        "HSO.07": {"*": (0.55, 0.68)},
        "HSO.08": {"*": (0.30, 0.45)},
        "HSO.10": {"*": (0.24, 0.33)},
        "KQS.02": {"province": (0.45, 0.56), "district": (0.33, 0.43), "commune": (0.27, 0.37)},
        "KQS.04": {"*": (0.35, 0.55)},
        "GDT.02": {"*": (0.18, 0.28)},
        "TTH.03": {"*": (0.86, 0.97)},
        "TTH.04": {"*": (0.44, 0.58)},
        "TTH.06": {"*": (0.40, 0.56)},
        "TTH.08": {"*": (0.38, 0.55)},
        "TTH.09": {"*": (0.15, 0.25)},
        "KSH.02": {"*": (0.83, 0.88)},
        "KSH.04": {"*": (0.71, 0.78)},
        "KSH.06": {"*": (0.84, 0.89)},
        "KSH.08": {"*": (0.77, 0.83)},
        "CQS.02": {"province": (0.85, 0.93), "district": (0.62, 0.73), "commune": (0.32, 0.43)},
        "CQS.06": {"*": (0.20, 0.35)},
        "CQS.08": {"*": (0.70, 0.85)},
        "CQS.10": {"*": (0.45, 0.65)},
        "CQS.12": {"*": (0.20, 0.33)},
        "CQS.14": {"*": (0.85, 0.95)},
        "CQS.16": {"*": (0.48, 0.58)},
        "CVU.02": {"*": (0.93, 0.97)},
    },
    # Trần Đề / Ngã Năm 2025 (Q1, H1): a little ahead of where 2024 ended.
    ("TD", 2025): {
        "HSO.02": {"*": (0.62, 0.66)},
        "HSO.07": {"*": (0.90, 0.93)},
        "HSO.08": {"*": (0.86, 0.90)},
        "HSO.10": {"*": (0.74, 0.78)},
        "KQS.02": {"*": (0.56, 0.62)},
        "KQS.04": {"*": (0.72, 0.78)},
        "GDT.02": {"*": (0.46, 0.50)},
        "TTH.03": {"*": (0.94, 0.96)},
        "TTH.04": {"*": (0.92, 0.95)},
        "TTH.06": {"*": (0.86, 0.90)},
        "TTH.08": {"*": (0.96, 1.0)},
        "TTH.09": {"*": (0.15, 0.25)},
        "KSH.02": {"*": (0.93, 0.95)},
        "KSH.04": {"*": (0.87, 0.90)},
        "KSH.06": {"*": (0.92, 0.95)},
        "KSH.08": {"*": (0.90, 0.93)},
        "CQS.02": {"district": (0.86, 0.9), "commune": (0.68, 0.72)},
        "CQS.06": {"*": (0.50, 0.58)},
        "CQS.08": {"*": (0.92, 0.95)},
        "CQS.10": {"*": (0.62, 0.7)},
        "CQS.12": {"*": (0.80, 0.84)},
        "CQS.14": {"*": (0.95, 0.98)},
        "CQS.16": {"*": (0.66, 0.68)},
        "CVU.02": {"*": (0.92, 0.95)},
    },
    ("NN", 2025): {
        "HSO.02": {"district": (0.57, 0.60), "commune": (0.55, 0.58)},
        "HSO.07": {"*": (0.93, 0.95)},
        "HSO.08": {"*": (0.84, 0.88)},
        "HSO.10": {"*": (0.735, 0.75)},
        "KQS.02": {"district": (0.83, 0.9), "commune": (0.82, 0.88)},
        "KQS.04": {"district": (0.78, 0.8), "commune": (0.74, 0.77)},
        "GDT.02": {"*": (0.36, 0.39)},
        "TTH.03": {"*": (0.87, 0.89)},
        "TTH.04": {"*": (0.96, 0.97)},
        "TTH.06": {"*": (0.86, 0.88)},
        "TTH.08": {"*": (0.87, 0.90)},
        "TTH.09": {"*": (0.15, 0.25)},
        "KSH.02": {"*": (0.915, 0.92)},
        "KSH.04": {"*": (0.84, 0.85)},
        "KSH.06": {"*": (0.95, 0.955)},
        "KSH.08": {"*": (0.88, 0.92)},
        "CQS.02": {"district": (0.87, 0.89), "commune": (0.68, 0.70)},
        "CQS.06": {"*": (0.48, 0.52)},
        "CQS.08": {"*": (0.87, 0.89)},
        "CQS.10": {"*": (0.75, 0.8)},
        "CQS.12": {"*": (0.805, 0.83)},
        "CQS.14": {"*": (0.95, 0.98)},
        "CQS.16": {"*": (0.54, 0.56)},
        "CVU.02": {"*": (0.92, 0.93)},
    },
    # Tây Hòa 2025, the deadline year: most section II targets met, digitized results short of the ramp
    # (100 district / 95 commune), no re-supply, internal procedures, e-ID and health/education satisfaction short.
    ("TH", 2025): {
        "HSO.02": {"*": (0.66, 0.72)},
        "HSO.07": {"*": (0.82, 0.88)},
        "HSO.08": {"*": (0.84, 0.90)},
        "HSO.10": {"*": (0.74, 0.79)},
        "KQS.02": {"district": (0.80, 0.86), "commune": (0.72, 0.80)},
        "KQS.04": {"*": (0.60, 0.75)},
        "GDT.02": {"*": (0.29, 0.36)},
        "TTH.03": {"*": (0.90, 0.96)},
        "TTH.04": {"*": (0.82, 0.90)},
        "TTH.06": {"*": (0.78, 0.85)},
        "TTH.08": {"*": (0.86, 0.91)},
        "TTH.09": {"*": (0.20, 0.35)},
        "KSH.02": {"*": (0.90, 0.93)},
        "KSH.04": {"*": (0.84, 0.88)},
        "KSH.06": {"*": (0.91, 0.94)},
        "KSH.08": {"*": (0.86, 0.90)},
        "CQS.02": {"district": (0.80, 0.87), "commune": (0.56, 0.66)},
        "CQS.06": {"*": (0.44, 0.56)},
        "CQS.08": {"*": (0.88, 0.93)},
        "CQS.10": {"*": (0.50, 0.66)},
        "CQS.12": {"*": (0.80, 0.87)},
        "CQS.14": {"*": (0.92, 0.98)},
        "CQS.16": {"*": (0.55, 0.60)},
        "CVU.02": {"*": (0.88, 0.93)},
    },
    # Minh Đức's predecessors (Q1-H1) and the new communes of Đắk Lắk (Q3-Y) share one shape each.
    ("HQ", 2025): {},
    ("DL", 2025): {},
    # Minh Đức 2025 (Q3, Y): on-time >= 98, address-independent 100, online payment offered 80 / paid 60,
    # full online 80, online dossiers 60, digitization 80, e-results 100, reuse 50, satisfaction 95,
    # no re-supply 100, e-ID 100, systems 100, work records 90, inspections digital 50, signed 100, mobile 100.
    ("MD", 2025): {
        "HSO.02": {"*": (0.52, 0.56), "q": (0.58, 0.64)},
        "HSO.07": {"*": (0.90, 0.96)},
        "HSO.08": {"*": (0.70, 0.72), "q": (0.76, 0.83)},
        "HSO.09": {"*": (0.40, 0.42), "q": (0.47, 0.55)},
        "HSO.10": {"*": (0.80, 0.82), "q": (0.86, 0.91)},
        "KQS.02": {"*": (0.60, 0.62), "q": (0.70, 0.80)},
        "KQS.04": {"*": (0.85, 0.88), "q": (0.92, 0.97)},
        "GDT.02": {"*": (0.50, 0.52), "q": (0.56, 0.63)},
        "TTH.03": {"*": (0.74, 0.76), "q": (0.79, 0.85)},
        "TTH.04": {"*": (0.90, 0.92), "q": (0.93, 0.97)},
        "TTH.06": {"*": (0.74, 0.76), "q": (0.80, 0.86)},
        "TTH.08": {"*": (0.90, 0.92), "q": (0.95, 1.0)},
        "TTH.09": {"*": (0.80, 0.82), "q": (0.88, 0.96)},
        "KSH.02": {"*": (0.93, 0.94), "q": (0.945, 0.965)},
        "KSH.04": {"*": (0.90, 0.91), "q": (0.92, 0.95)},
        "KSH.06": {"*": (0.93, 0.94), "q": (0.95, 0.97)},
        "KSH.08": {"*": (0.90, 0.91), "q": (0.92, 0.95)},
        "CQS.02": {"*": (0.82, 0.84), "q": (0.87, 0.93)},
        "CQS.06": {"*": (0.38, 0.40), "q": (0.42, 0.56)},
        "CQS.08": {"*": (0.86, 0.88), "q": (0.90, 0.96)},
        "CQS.10": {"*": (0.60, 0.62), "q": (0.70, 0.85)},
        "CQS.12": {"*": (0.84, 0.86), "q": (0.88, 0.94)},
        "CQS.14": {"*": (0.94, 0.95), "q": (0.96, 0.995)},
        "CQS.16": {"*": (0.62, 0.64), "q": (0.66, 0.70)},
        "CVU.02": {"*": (0.90, 0.92), "q": (0.93, 0.97)},
    },
}
SHARES[("HQ", 2025)] = {k: {"*": v["*"]} for k, v in SHARES[("MD", 2025)].items()}
SHARES[("DL", 2025)] = {k: {"*": v.get("q", v["*"])} for k, v in SHARES[("MD", 2025)].items()}
SHARES[("CT", 2021)] = SHARES[("CT", 2022)]
for _shape in SHARES.values():  # elements no plan of the year names: plain defaults
    for _code, _path in {"HSO.09": (0.40, 0.55), "TTH.03": (0.8, 0.9), "TTH.04": (0.85, 0.95)}.items():
        _shape.setdefault(_code, {"*": _path})
MD_FLAT = "q"  # MD's own units: the "q" path runs over its two quarters (Q3, Q4)

# Laggards: (agency, element) -> (first, last quarter share), replacing the jurisdiction's path.
EXTRA_LAG: dict[str, dict[str, tuple[float, float]]] = {
    "CT-CODO-XA-THOIHUNG": {"KQS.02": (0.18, 0.24), "GDT.02": (0.06, 0.09), "CQS.02": (0.20, 0.26)},
    "CT-VINHTHANH": {"KQS.02": (0.28, 0.33), "HSO.02": (0.15, 0.2)},
    "CT-SO-YTE": {"KSH.08": (0.72, 0.76)},
    "TH-XA-SONTHANHTAY": {"KQS.02": (0.50, 0.58), "GDT.02": (0.12, 0.16), "CQS.02": (0.40, 0.46)},
    "TH-PHONG-KTHT": {"HSO.02": (0.40, 0.46), "KSH.04": (0.78, 0.80)},
    "MD-TT-DVTH": {"CQS.02": (0.70, 0.78)},
    "DL-XA-SONTHANH": {"KQS.02": (0.55, 0.62), "GDT.02": (0.30, 0.36)},
}
LATE_EXTRA = {0.06: ("MD-TT-PVHCC",)}  # share of late dossiers for these units (others 0.3-1.5%)

# Deliberate problems of the other jurisdictions: (agency, period code) -> what.
EXTRA_MISSING = {("CT-VINHTHANH", "2022-Q3"), ("TH-XA-SONTHANHTAY", "2025-H1")}
EXTRA_LATE = {
    ("CT-CODO-XA-THOIHUNG", "2022-H1"): 4,
    ("TH-PHONG-KTHT", "2025-H1"): 2,
    ("MD-TT-DVTH", "2025-Q3"): 3,
}  # days after due
EXTRA_INVALID = {
    ("CT-SO-TAICHINH", "2022-Q1"): {"TTH.06": +7},  # more fee procedures paying online than fee procedures
    ("DL-XA-SONTHANH", "2025-Y"): {"HSO.05": +9},  # on time + late != resolved
}
EXTRA_RESUBMITTED = {("TH-XA-HOADONG", "2025-Q1"): "HSO.01"}  # typed 10x too high, corrected 2 days later (_lan2)
EXTRA_QUIRKS: dict[tuple[str, str], Quirks] = {
    ("CT-SO-NOIVU", "2022-Y"): Quirks(vn_text_numbers=("BMA.03", "HSO.01")),
    ("CT-NINHKIEU-PHUONG-TANAN", "2022-Q3"): Quirks(nfd=True),
    ("CT-CAIRANG", "2022-H1"): Quirks(column_order=("Mã số", "STT", "Nội dung", "Số liệu", "Đơn vị tính", "Ghi chú")),
    ("CT-SO-TUPHAP", "2022-Q1"): Quirks(engine="xlsxwriter"),
    ("TH-TT-PHUTHU", "2025-H1"): Quirks(vn_text_numbers=("HSO.01", "KQS.01", "CQS.15")),
    ("TH-PHONG-TCKH", "2025-Q1"): Quirks(lowercase_keys=True, info_label_column=1),
    ("MD-PHONG-VHXH", "2025-Q3"): Quirks(nfd=True, extra_sheet="Hướng dẫn"),
    ("DL-XA-HOAMY", "2025-Q3"): Quirks(blank_row_after=6),
}


def extra_elements(unit: dict[str, str]) -> set[str]:
    """Data elements an agency of the other jurisdictions reports, by its role."""
    code, level = unit["code"], unit["admin_level"]
    out = {f"HSO.{i:02d}" for i in range(1, 11)} | {f"TTH.{i:02d}" for i in range(1, 10)}
    out |= {"KQS.01", "KQS.02", "KQS.03", "KQS.04", "GDT.01", "GDT.02", "PAK.01", "PAK.02", "KSH.01", "KSH.02"}
    out |= {"KSH.05", "KSH.06", "TGI.01", "TGI.02", "CQS.01", "CQS.02", "CQS.13", "CQS.14", "CVU.03", "CVU.04"}
    office = {"TCH.01", "TCH.02", "TCH.03", "TCH.04", "CQS.03", "CQS.04"} | {
        "CQS.07",
        "CQS.08",
        "CQS.09",
        "CQS.10",
        "CQS.11",
        "CQS.12",
    }
    roles = {
        ("NOIVU", "VHXH"): {"BMA.01", "BMA.02", "BMA.03", "CQS.17", "CQS.18", "CDD.01", "CDD.02", "CDD.03", "CDD.04"},
        ("TUPHAP",): {"TCH.01", "TCH.02", "TCH.03", "TCH.04", "TCH.05", "TCH.06"},
        ("TCKH", "TAICHINH", "PHONG-KT"): {"TCC.01", "TCC.02", "TCC.03", "TCC.04", "TCC.05", "KSH.03", "KSH.04"},
        ("CT-SO-NOIVU",): {"TCC.01", "TCC.02", "TCC.03", "TCC.04"},  # in Cần Thơ the PSU count is Sở Nội vụ's (seed 003, 1.9)
        ("TNMT", "NNMT", "KTHT", "NNPTNT", "PVHCC"): {"KSH.03", "KSH.04"},
        ("TTTT", "VHTT", "KHCN"): {"CQS.03", "CQS.04", "CQS.11", "CQS.12"},
        ("YTE", "GDDT"): {"KSH.07", "KSH.08"},
    }
    for keys, extra in roles.items():
        if any(k in code for k in keys):
            out |= extra
    if unit["unit_type"] == "people_committee" and level != "commune":
        out |= office | {"KSH.03", "KSH.04"}  # the PC office; in Cần Thơ also each district's PC
    elif code.endswith("-VP-UBND"):
        out |= office
    if unit["unit_type"] == "department":
        out |= {"CQS.05", "CQS.06"}
    if level == "commune" and unit["unit_type"] == "people_committee":
        out |= {"CVU.01", "CVU.02", "CQS.05", "CQS.06", "CQS.09", "CQS.10"}
        out |= {"CQS.11", "CQS.12", "CQS.15", "CQS.16", "KSH.07", "KSH.08"}
    if code == "MD-PHONG-VHXH":
        out |= {"CVU.01", "CVU.02"}
    if code == "MD-VP-UBND":
        out |= {"CQS.15", "CQS.16"}
    if code == "CT-SO-TAICHINH":
        out -= {"TCC.01", "TCC.02", "TCC.03", "TCC.04"}  # Sở Nội vụ reports them; Tài chính the spending
    return out


def simulate_extra(
    unit: dict[str, str], jurisdiction: str, year: int, rng: random.Random, prev: Figures | None = None
) -> list[Figures]:
    """Four calendar quarters of one agency of the other jurisdictions (flows per quarter, stocks at quarter end).

    Shares of the parent follow SHARES[(jurisdiction, year)] from Q1 to Q4 (MD's own units: the "q" path over
    Q3-Q4); `prev` (the agency's last 2024 quarter) carries the stock levels on, so nothing jumps.
    """
    code, level = unit["code"], unit["admin_level"]
    shape, lag = SHARES[(jurisdiction, year)], EXTRA_LAG.get(code, {})
    commune = level == "commune" and unit["unit_type"] == "people_committee"
    flat_from = 2 if jurisdiction == "MD" else 0

    def path(key: str) -> tuple[float, float]:
        if key in lag:
            return lag[key]
        levels = shape[key]
        if jurisdiction == "MD" and MD_FLAT in levels:
            return levels[MD_FLAT]
        return levels.get(level, levels.get("*", (0.8, 0.9)))

    offset = {k: 0.0 if k in lag else rng.uniform(-0.03, 0.03) for k in shape}

    def share(key: str, q: int, noise: float = 0.0) -> float:
        start, end = path(key)
        t = max(0, q - flat_from) / (3 - flat_from)
        return min(1.0, max(0.0, start + (end - start) * t + offset.get(key, 0.0) + rng.uniform(-noise, noise)))

    def part(total: float, fraction: float) -> int:
        return min(round(total), max(0, round(total * fraction)))

    size = rng.uniform(0.75, 1.25)
    base = (180 if commune else 320 if level == "province" else 260) * size
    if code.endswith("PVHCC"):
        base *= 3.5  # the commune's one-stop centre receives most dossiers
    if prev and prev.get("HSO.01"):
        base = prev["HSO.01"] / 1.15  # continue from last year's fourth quarter
    late = next((s for s, units in LATE_EXTRA.items() if code in units), rng.uniform(0.003, 0.015))
    n_proc = rng.randint(25, 45) if commune else rng.randint(40, 120)
    eligible, fees = rng.uniform(0.35, 0.5), rng.uniform(0.3, 0.45)
    internal, results_held = rng.randint(6, 15), round(base * rng.uniform(9, 14))
    wait, process = rng.uniform(10, 17), rng.uniform(22, 32)
    officials, leaders = rng.randint(19, 24), rng.randint(4, 6) if commune else rng.randint(2, 5)
    adults, users = round(rng.uniform(6000, 20000)), round(rng.uniform(4000, 9000))
    systems = 9 if level != "commune" else 4
    services = 120 + rng.randint(0, 40)
    agencies, psus, econ, scope = 12, rng.randint(18, 24), rng.randint(3, 5), 20
    payroll = round(rng.uniform(1500, 2500))
    if jurisdiction == "CT":
        agencies, psus, econ, scope, payroll = 31, 124, 10, 60, 9860  # city totals (Sở Nội vụ, Sở Tài chính)
    if jurisdiction == "MD":
        agencies, psus, econ, scope, payroll, systems = 5, 6, 1, 5, 96, 4
    if prev:
        n_proc = int(prev.get("TTH.01", n_proc))
        eligible = prev.get("TTH.02", n_proc * eligible) / max(1, n_proc)
        fees = prev.get("TTH.05", n_proc * fees) / max(1, n_proc)
        internal = int(prev.get("TTH.07", internal))
        results_held = int(prev.get("KQS.01", results_held))
        officials, leaders = int(prev.get("CVU.01", officials)), int(prev.get("CVU.03", leaders))
        adults, users = int(prev.get("CQS.15", adults)), int(prev.get("CQS.11", users))
        systems, services = int(prev.get("CQS.03", systems)), int(prev.get("CQS.07", services))
        agencies, payroll = int(prev.get("BMA.01", agencies)), int(prev.get("BMA.03", payroll))
        psus, econ, scope = int(prev.get("TCC.01", psus)), int(prev.get("TCC.03", econ)), int(prev.get("CDD.01", scope))
        wait, process = prev.get("TGI.01", wait), prev.get("TGI.02", process)
    quarters: list[Figures] = []
    for q in range(4):
        season = (0.9, 1.0, 1.05, 1.15)[q] * rng.uniform(0.93, 1.07)
        v: Figures = {}
        v["HSO.01"] = received = round(base * season)
        v["HSO.02"] = part(received, share("HSO.02", q, 0.01))
        v["HSO.03"] = resolved = part(received, rng.uniform(0.92, 0.98))
        v["HSO.05"] = part(resolved, late * rng.uniform(0.8, 1.2))
        v["HSO.04"] = resolved - v["HSO.05"]
        v["HSO.06"] = part(received, rng.uniform(0.12, 0.25))
        v["HSO.07"] = part(v["HSO.06"], share("HSO.07", q, 0.01))
        v["HSO.08"] = part(received, share("HSO.08", q, 0.01))
        v["HSO.09"] = part(v["HSO.08"], share("HSO.09", q, 0.01) * received / max(1, v["HSO.08"]))
        v["HSO.10"] = part(received, share("HSO.10", q, 0.01))
        v["KQS.03"] = part(resolved, rng.uniform(0.95, 1.0))
        v["KQS.04"] = part(v["KQS.03"], share("KQS.04", q, 0.01))
        v["GDT.01"] = part(received, rng.uniform(0.3, 0.45))
        v["GDT.02"] = part(v["GDT.01"], share("GDT.02", q, 0.01))
        v["PAK.01"] = rng.choice((0, 0, 1, 1, 2, 3))
        v["PAK.02"] = v["PAK.01"] - (1 if v["PAK.01"] >= 2 and jurisdiction != "MD" and rng.random() < 0.3 else 0)
        v["KSH.01"] = part(resolved, rng.uniform(0.2, 0.32))
        v["KSH.02"] = part(v["KSH.01"], share("KSH.02", q, 0.005))
        v["KSH.03"] = part(v["KSH.01"], rng.uniform(0.3, 0.5))
        v["KSH.04"] = part(v["KSH.03"], share("KSH.04", q, 0.005))
        v["KSH.05"] = part(v["KSH.01"], rng.uniform(0.5, 0.75))
        v["KSH.06"] = part(v["KSH.05"], share("KSH.06", q, 0.005))
        v["KSH.07"] = rng.randint(40, 120)
        v["KSH.08"] = part(v["KSH.07"], share("KSH.08", q, 0.005))
        v["TGI.01"] = round(min(40.0, max(5.0, wait - 0.5 * q + rng.uniform(-0.8, 0.8))), 1)
        v["TGI.02"] = round(min(45.0, max(10.0, process - 0.7 * q + rng.uniform(-1.2, 1.2))), 1)
        v["CQS.01"] = round(base * 0.8 * season)
        v["CQS.02"] = part(v["CQS.01"], share("CQS.02", q, 0.01))
        v["CQS.13"] = part(v["CQS.01"] * 1.5, rng.uniform(0.8, 1.0))
        v["CQS.14"] = part(v["CQS.13"], share("CQS.14", q, 0.005))
        v["CQS.05"] = rng.randint(3, 7)
        v["CQS.06"] = part(v["CQS.05"], share("CQS.06", q, 0.03))
        v["CQS.09"] = rng.randint(4, 7)
        v["CQS.10"] = part(v["CQS.09"], share("CQS.10", q, 0.03))
        v["TCH.01"] = rng.randint(1, 3) if unit["unit_type"] == "people_committee" else rng.randint(0, 1)
        v["TCH.02"] = v["TCH.01"]
        v["TCH.03"] = rng.randint(0, 3)
        v["TCH.04"] = v["TCH.03"]
        v["TCH.05"] = rng.randint(3, 8) if jurisdiction == "CT" else rng.randint(1, 3)
        v["TCH.06"] = v["TCH.05"] - (1 if q == 3 and jurisdiction == "CT" else 0)  # one draft still being appraised
        v["CDD.03"] = rng.randint(2, 6)
        v["CDD.04"] = v["CDD.03"] - (0 if jurisdiction == "MD" else rng.randint(0, 1))
        v["TCC.05"] = rng.randint(150_000, 450_000) / 10
        # stocks at the end of the quarter
        n_proc += rng.choice((0, 0, 1))
        v["TTH.01"], v["TTH.02"] = n_proc, round(n_proc * eligible)
        v["TTH.03"] = part(v["TTH.02"], share("TTH.03", q))
        v["TTH.04"] = part(v["TTH.03"], share("TTH.04", q))
        v["TTH.05"] = round(n_proc * fees)
        v["TTH.06"] = part(v["TTH.05"], share("TTH.06", q))
        v["TTH.07"], v["TTH.08"] = internal, part(internal, share("TTH.08", q))
        v["TTH.09"] = part(n_proc, share("TTH.09", q))
        results_held += round(v["KQS.03"] * rng.uniform(0.6, 0.8))
        v["KQS.01"], v["KQS.02"] = results_held, part(results_held, share("KQS.02", q))
        v["CVU.01"], v["CVU.02"] = officials, part(officials, share("CVU.02", q))
        v["CVU.03"] = leaders
        v["CVU.04"] = int(prev.get("CVU.04", 0)) if prev else (1 if q >= 2 and leaders >= 5 else 0)
        v["CQS.03"], v["CQS.04"] = systems, part(systems, share("CQS.12", q))  # systems connected move with e-ID
        v["CQS.07"] = services + 3 * q
        v["CQS.08"] = part(v["CQS.07"], share("CQS.08", q))
        users = round(users * rng.uniform(1.03, 1.07))
        v["CQS.11"], v["CQS.12"] = users, part(users, share("CQS.12", q))
        adults += rng.randint(10, 60)
        v["CQS.15"], v["CQS.16"] = adults, part(adults, share("CQS.16", q))
        v["CQS.17"], v["CQS.18"] = agencies, part(agencies, min(1.0, 0.9 + 0.04 * q))
        payroll -= rng.randint(45, 70) if jurisdiction == "CT" else rng.randint(0, 3)
        v["BMA.01"], v["BMA.02"], v["BMA.03"] = agencies, agencies - (1 if q < 2 else 0), payroll
        v["CDD.01"] = scope
        v["CDD.02"] = part(scope, (0.10, 0.18, 0.26, 0.34)[q] if jurisdiction != "MD" else (0.0, 0.0, 0.2, 0.6)[q])
        psus -= 1 if jurisdiction == "CT" else 0
        v["TCC.01"], v["TCC.03"] = psus, econ
        self_financing = {"MD": (0.17, 0.17, 0.17, 0.34), "TH": (0.40, 0.42, 0.44, 0.46)}.get(
            jurisdiction, (0.08, 0.09, 0.10, 0.12)
        )
        v["TCC.02"] = part(psus, self_financing[q])
        v["TCC.04"] = part(econ, 0.34 if jurisdiction == "CT" else (0.0, 0.0, 0.0, 1.0)[q] if jurisdiction == "MD" else 0.5)
        keep = extra_elements(unit)
        quarters.append({k: x for k, x in v.items() if k in keep})
    return quarters


def check_figures(figures: Figures, elements: list[dict[str, str]], indicators: list[dict[str, str]]) -> list[str]:
    """Consistency of one report's figures: "of which" <= parent, HSO.04 + HSO.05 == HSO.03, numerator <= denominator."""
    problems = []
    pairs = {(e["code"], e["parent_code"]) for e in elements if e["parent_code"]}
    pairs |= {(i["numerator"], i["denominator"]) for i in indicators if i["method"] == "ratio" and i["denominator"]}
    for child, parent in sorted(pairs):
        if child in figures and parent in figures and figures[child] > figures[parent]:
            problems.append(f"{child}={figures[child]} > {parent}={figures[parent]}")
    if {"HSO.03", "HSO.04", "HSO.05"} <= figures.keys() and figures["HSO.04"] + figures["HSO.05"] != figures["HSO.03"]:
        problems.append("HSO.04 + HSO.05 != HSO.03")
    return problems


def expected_reports(unit: dict[str, str], year: int, reports: tuple[str, ...], due_day: int) -> list[str]:
    """The unit's reports among `reports`, by the catalog's rule (in force on the due day, open on the 1st)."""
    out = []
    for report in reports:
        period = Period(year, report)
        due, month_start = dt.date(year, period.last_month, due_day), dt.date(year, period.last_month, 1)
        if unit["valid_from"] <= month_start.isoformat() and (not unit["valid_to"] or unit["valid_to"] >= due.isoformat()):
            out.append(report)
    return out


def build_window(quarters: list[Figures], report: str, kinds: dict[str, str], first_quarter: int = 0) -> Figures:
    """Like build_report, for a unit that exists from calendar quarter `first_quarter` (0-based) on."""
    window = [quarters[i] for i in REPORTS[report] if i >= first_quarter]
    out: Figures = {}
    for code in window[-1]:
        kind = kinds[code]
        if kind == "stock":
            out[code] = window[-1][code]
        elif kind == "mean":
            weight = sum(q["HSO.01"] for q in window)
            out[code] = round(sum(q[code] * q["HSO.01"] for q in window) / weight, 2)
        elif code == "TCC.05":
            out[code] = round(sum(q[code] for q in window), 1)
        else:
            out[code] = sum(q[code] for q in window)
    return out


def write_extra(
    out: Path,
    seed: int,
    units: list[dict[str, str]],
    calendars: dict[str, dict[str, str]],
    contacts: dict[str, dict[str, str]],
    kinds: dict[str, str],
    labels: dict[str, tuple[str, str]],
    order: list[str],
    checks: tuple[list[dict[str, str]], list[dict[str, str]]],
    last: dict[str, tuple[int, Figures]],
) -> list[tuple[str, dt.datetime]]:
    """The other jurisdictions' workbooks (EXTRA_DEMO); returns their receipts."""
    receipts: list[tuple[str, dt.datetime]] = []
    for jurisdiction, year, reports in EXTRA_DEMO:
        rng = random.Random(f"{seed}-{jurisdiction}-{year}")
        only = EXTRA_ONLY.get((jurisdiction, year))
        members = [
            u
            for u in units
            if u["jurisdiction_code"] == jurisdiction and u["reports"].lower() == "true" and (not only or u["code"] in only)
        ]
        for unit in members:
            code = unit["code"]
            due_day = int(calendars[unit["reporting_authority"]]["due_day"])
            wanted = reports if only else tuple(expected_reports(unit, year, reports, due_day))
            if not wanted:
                continue
            first_quarter = max(0, (int(unit["valid_from"][5:7]) - 1) // 3) if unit["valid_from"] >= f"{year}-01-01" else 0
            before = last.get(code)
            quarters = simulate_extra(unit, jurisdiction, year, rng, before[1] if before and before[0] == year - 1 else None)
            last[code] = (year, quarters[3])
            person = contacts.get(code, {})
            for report in wanted:
                period = Period(year, report)
                key = (code, period.code)
                due = dt.date(year, period.last_month, due_day)
                signed = due - dt.timedelta(days=rng.randint(1, 6))
                received = dt.datetime.combine(
                    signed + dt.timedelta(days=rng.randint(0, 1)), dt.time(rng.randint(7, 16), rng.choice((0, 15, 30, 45)))
                )
                if key in EXTRA_MISSING:
                    continue
                if key in EXTRA_LATE:
                    signed = due + dt.timedelta(days=EXTRA_LATE[key] - 1)
                    received = dt.datetime.combine(due + dt.timedelta(days=EXTRA_LATE[key]), dt.time(8, 40))
                figures = build_window(quarters, report, kinds, first_quarter if year == int(unit["valid_from"][:4]) else 0)
                problems = check_figures(figures, *checks)
                if problems:
                    raise AssertionError(f"{key}: {problems}")
                for element, delta in EXTRA_INVALID.get(key, {}).items():
                    figures[element] += delta
                cells = {c: figures[c] for c in order if c in figures}
                content = FormContent(
                    agency_code=code,
                    agency_name=unit["name_vi"],
                    period_label=period.label_vi,
                    report_date=signed,
                    figures=cells,
                    labels=labels,
                    preparer=person.get("name", ""),
                    contact=person.get("email", ""),
                )
                path = out / period.code / f"{code}_{period.code}.xlsx"
                if key in EXTRA_RESUBMITTED:
                    element = EXTRA_RESUBMITTED[key]
                    typo = dataclasses.replace(content, figures=cells | {element: figures[element] * 10})
                    freeze(write_form(path, typo, EXTRA_QUIRKS.get(key)), received)
                    receipts.append((path.name, received))
                    path = path.with_name(f"{code}_{period.code}_lan2.xlsx")
                    received += dt.timedelta(days=2)
                    content.report_date = received.date()
                freeze(write_form(path, content, EXTRA_QUIRKS.get(key)), received)
                receipts.append((path.name, received))
    return receipts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/raw"))
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    out: Path = args.out
    for folder in out.glob("*-*"):
        if folder.is_dir() and re.fullmatch(r"\d{4}-(Q1|H1|Q3|Y)", folder.name):
            for old in folder.glob("*.xlsx"):
                old.unlink()

    elements = read_csv(ROOT / "catalog" / "data_elements.csv")
    kinds = {e["code"]: e["kind"] for e in elements}
    labels = {e["code"]: (("- " if e["parent_code"] else "") + e["name_vi"], e["unit"]) for e in elements}
    order = [e["code"] for e in elements]
    contacts = {c["org_unit_code"]: c for c in read_csv(ROOT / "catalog" / "contacts.csv")}
    sim_rng, date_rng, nn_rng = random.Random(args.seed), random.Random(args.seed + 1), random.Random(args.seed + 2)
    units = [(u, simulate, sim_rng, date_rng) for u in reporting_units("TD")]
    units += [(u, simulate_nn, nn_rng, nn_rng) for u in reporting_units("NN")]  # own stream: TD files stay as they were
    receipts: list[tuple[str, dt.datetime]] = []
    last: dict[str, tuple[int, Figures]] = {}  # agency -> (year, its last simulated quarter): stocks carry on

    for unit, simulator, rng, dates in units:
        code = unit["code"]
        quarters = simulator(code, rng)
        last[code] = (YEAR, quarters[3])
        slug = code.rsplit("-", 1)[-1].lower()
        person = contacts.get(code, {})
        contact = f"{person.get('phone', '0299 3850 000')} / vanthu.{slug}@trande.soctrang.gov.vn"
        if unit["jurisdiction_code"] == "NN":
            contact = f"{person['phone']} / {person['email']}"
        for report in REPORTS:
            key = (code, report)
            if key == ("TD-XA-DAIAN2", "Q3"):
                continue  # missing report
            period = Period(YEAR, report)
            due = dt.date(YEAR, period.last_month, DUE_DAY)
            path = out / period.code / f"{code}_{period.code}.xlsx"
            signed = due - dt.timedelta(days=6 if key == ("TD-XA-TAIVAN", "Q1") else dates.randint(2, 6))
            received = dt.datetime.combine(
                signed + dt.timedelta(days=dates.randint(0, 1)),
                dt.time(dates.randint(7, 16), dates.choice((0, 15, 30, 45))),
            )
            if key == ("TD-XA-VIENAN", "H1"):  # late: signed and sent after the due day
                signed, received = dt.date(YEAR, 6, 13), dt.datetime(YEAR, 6, 14, 9, 20)
            if key == ("TD-PHONG-VHTT", "Y"):  # unreadable: not a zip at all
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\xd0\xcf BAO CAO CCHC 2024 " + dates.randbytes(2048))
                receipts.append((path.name, received))
                continue
            figures = build_report(quarters, report, kinds)
            if key == ("TD-PHONG-KTHT", "Q3"):  # invalid: online > received, on time + late != resolved
                figures["HSO.02"] = figures["HSO.01"] + 37
                figures["HSO.05"] += 12
            merged: dict[str, object] = {**figures, **NOT_ARISEN.get(key, {})}
            cells = {c: merged[c] for c in order if c in merged}
            if key in FORMULA_HSO03:
                cells["HSO.03"] = Formula("={HSO.04}+{HSO.05}", cached=figures["HSO.03"])
            content = FormContent(
                agency_code=code,
                agency_name=unit["name_vi"],
                period_label=PERIOD_LABELS.get(key, period.label_vi),
                report_date=signed,
                figures=cells,
                labels=labels,
                preparer=person.get("name", "Nguyễn Văn An"),
                contact=contact,
                tasks=tasks_at(report) if key in TASK_FILES else (),
            )
            if key == ("TD-XA-TAIVAN", "Q1"):  # resubmission: first file has GDT.01 typed 10x too high
                typo = dataclasses.replace(content, figures=cells | {"GDT.01": figures["GDT.01"] * 10})
                freeze(write_form(path, typo, QUIRKS.get(key)), received)
                receipts.append((path.name, received))
                path = path.with_name(f"{code}_{period.code}_lan2.xlsx")
                received += dt.timedelta(days=2)
                content.report_date = received.date()
            freeze(write_form(path, content, QUIRKS.get(key)), received)
            receipts.append((path.name, received))

    receipts += write_extra(
        out,
        args.seed,
        read_csv(ROOT / "catalog" / "org_units.csv"),
        {c["authority"]: c for c in read_csv(ROOT / "catalog" / "calendars.csv")},
        contacts,
        kinds,
        labels,
        order,
        (elements, [i for f in sorted((ROOT / "catalog" / "indicators").glob("*.csv")) for i in read_csv(f)]),
        last,
    )
    receipts.sort(key=lambda item: (item[1], item[0]))
    with open(out / "receipts.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "received_at"])
        writer.writerows((name, when.isoformat(timespec="seconds")) for name, when in receipts)
    print(f"wrote {len(receipts)} files under {out} and {out / 'receipts.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
