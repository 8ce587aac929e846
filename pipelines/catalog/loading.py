"""Reading the catalog files into typed records, and naming every problem with its place.

Each CSV row and each YAML plan and target is validated by its model (records.py). A value
the model refuses becomes one problem that names the file, the row (CSV line, header = line 1)
or YAML path (`plans/x.yaml, targets[3] (id TD-07).value`) and the field, and says what is
allowed, Vietnamese first and English after.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import pandas as pd
import yaml
from pydantic import ValidationError

from pipelines.catalog.records import Plan, PlanTarget, Record


class CatalogError(ValueError):
    """The catalog files are missing, malformed or contradict themselves.

    Each problem names the file, the row (or YAML path) and the column, and says what is
    allowed, Vietnamese first and English after.
    """

    def __init__(self, problems: list[str] | str, root: Path | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.root = root
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        if self.root is None:
            return "\n".join(self.problems)
        head = (
            f"Danh mục {self.root} có {len(self.problems)} lỗi; hãy sửa rồi chạy lại"
            f" / the catalog {self.root} has {len(self.problems)} problem(s); fix them and run again:"
        )
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


def where(file: str, row: int | None = None, column: str | None = None) -> str:
    """`file, dòng/row N, cột/column C`: a place in a catalog CSV."""
    parts = [file]
    if row is not None:
        parts.append(f"dòng/row {row}")
    if column:
        parts.append(f"cột/column {column}")
    return ", ".join(parts)


def fingerprint(root: Path) -> tuple | None:
    """The catalog folder's files with their sizes and modification times (None: no folder), in
    the order of their paths' parts. Asked some ten times a run (each `Catalog.load`, the
    fingerprints of what rows were computed from): `os.scandir` walks a catalog's 40 files in
    0.2 ms where `Path.rglob` and `Path.stat` took 2 ms."""
    if not root.is_dir():
        return None
    files: list[tuple[tuple[str, ...], int, int]] = []
    seen: set[tuple[int, int]] = set()  # folders walked (a link to a folder is followed, once)

    def walk(folder: str, parts: tuple[str, ...]) -> None:
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            return
        seen.add((stat.st_dev, stat.st_ino))
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir():
                    walk(entry.path, (*parts, entry.name))
                elif entry.is_file():
                    stat = entry.stat()
                    files.append(((*parts, entry.name), stat.st_size, stat.st_mtime_ns))

    walk(str(root), ())
    files.sort(key=lambda item: item[0])
    return (str(root.resolve()), tuple((os.sep.join(parts), size, mtime) for parts, size, mtime in files))


def read_yaml(text: str):
    """YAML through libyaml when available (same safe constructors, several times faster)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# ------------------------------------------------------------------------- pydantic errors
_MESSAGES = {
    "missing": ("thiếu trường bắt buộc", "missing required field"),
    "extra_forbidden": ("trường '{field}' không có trong mẫu khai báo (gõ sai tên?)", "unknown field '{field}' (a typo?)"),
    "int_parsing": ("'{input}' phải là số nguyên", "'{input}' must be a whole number"),
    "int_from_float": ("'{input}' phải là số nguyên", "'{input}' must be a whole number"),
    "int_type": ("'{input}' phải là số nguyên", "'{input}' must be a whole number"),
    "float_parsing": ("'{input}' phải là một số", "'{input}' must be a number"),
    "float_type": ("'{input}' phải là một số", "'{input}' must be a number"),
    "finite_number": ("'{input}' phải là một số hữu hạn", "'{input}' must be a finite number"),
    "literal_error": ("'{input}' không có trong các giá trị ({expected})", "'{input}' is not one of ({expected})"),
    "model_type": ("phải là một bảng khóa: giá trị", "must be a mapping (key: value)"),
    "model_attributes_type": ("phải là một bảng khóa: giá trị", "must be a mapping (key: value)"),
    "dict_type": ("phải là một bảng khóa: giá trị", "must be a mapping (key: value)"),
    "tuple_type": ("phải là một danh sách", "must be a list"),
    "list_type": ("phải là một danh sách", "must be a list"),
}


def _path(loc: tuple) -> str:
    """A pydantic location as a YAML path: ("phases", 0, "end_year") -> phases[0].end_year."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: dict) -> str:
    if error["type"] == "catalog":  # our own validators' errors are bilingual already
        return error["msg"]
    vi, en = _MESSAGES.get(error["type"], ("giá trị '{input}' không hợp lệ", "invalid value '{input}'"))
    context = {"input": error.get("input"), "field": error["loc"][-1] if error["loc"] else ""}
    context |= {k: str(v).replace(" or ", ", ") for k, v in (error.get("ctx") or {}).items()}  # literal: 'a', 'b' or 'c'
    text = f"{vi.format(**context)} / {en.format(**context)}"
    return text if error["type"] in _MESSAGES else f"{text}: {error['msg']}"


def csv_problems(exc: ValidationError, file: str, line: int) -> list[str]:
    """A CSV row's validation errors, each naming the file, the line and the column."""
    return [f"{where(file, line, _path(e['loc']))}: {_message(e)}" for e in exc.errors()]


def yaml_problems(exc: ValidationError, place: str) -> list[str]:
    """A YAML mapping's validation errors, each naming its path under `place` (`plans/x.yaml, plan`)."""
    return [f"{place}.{_path(e['loc'])}: {_message(e)}" if e["loc"] else f"{place}: {_message(e)}" for e in exc.errors()]


# ------------------------------------------------------------------------------ CSV files
R = TypeVar("R", bound=Record)


def read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A catalog CSV as text, every cell a string ("" when empty)."""
    if not path.exists():
        raise CatalogError(f"{path}: không tìm thấy tệp danh mục / catalog file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CatalogError(f"{path}: không đọc được tệp CSV (UTF-8) / cannot read the CSV file (UTF-8): {exc}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{path}: thiếu cột {', '.join(missing)} / missing columns {', '.join(missing)} (có / found: {', '.join(frame.columns)})"
        )
    return frame


def read_records(path: Path, model: type[R], file: str, problems: list[str], required: tuple[str, ...] = (), **fields) -> list[R]:
    """The rows of a catalog CSV as `model` records (line = line number, header = line 1), plus
    `fields` on every row. A row the model refuses adds its problems and is left out."""
    frame = read_csv(path, required)
    records = []
    for line, row in enumerate(frame.to_dict("records"), start=2):
        try:
            records.append(model.model_validate(row | fields | {"line": line}))
        except ValidationError as exc:
            problems += csv_problems(exc, file, line)
    return records


# ----------------------------------------------------------------------------- plan files
def read_plans(folder: Path, problems: list[str]) -> tuple[list[Plan], list[PlanTarget]]:
    """Every plans/*.yaml: its plan and its targets (each target with its plan's id, issuer and phase years)."""
    plans, targets = [], []
    for path in sorted(folder.glob("*.yaml")):
        place = f"plans/{path.name}"
        try:
            doc = read_yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            problems.append(f"{place}: YAML không hợp lệ / invalid YAML: {exc}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("plan"), dict):
            problems.append(
                f"{place}, plan: thiếu phần plan (cần id, issuer, start_year, end_year, phases)"
                f" / missing the plan section (needs id, issuer, start_year, end_year, phases)"
            )
            continue
        try:
            plan = Plan.model_validate(doc["plan"] | {"file": path.name})
        except ValidationError as exc:
            problems += yaml_problems(exc, f"{place}, plan")
            continue
        plans.append(plan)
        entries = doc.get("targets") or []
        if not isinstance(entries, list):
            problems.append(f"{place}, targets: phải là một danh sách / must be a list")
            continue
        phases = {p.phase_id: p for p in plan.phases}
        for index, entry in enumerate(entries):
            target_place = f"{place}, targets[{index}] (id {entry.get('id') if isinstance(entry, dict) else '?'})"
            if not isinstance(entry, dict):
                problems.append(f"{target_place}: phải là một bảng khóa: giá trị / must be a mapping (key: value)")
                continue
            phase = phases.get(str(entry.get("phase", "")))
            if phase is None:
                problems.append(
                    f"{target_place}.phase: giai đoạn '{entry.get('phase', '')}' không có trong plan.phases ({', '.join(phases)})"
                    f" / unknown phase '{entry.get('phase', '')}' (plan.phases: {', '.join(phases)})"
                )
                continue
            from_plan = {
                "plan_id": plan.plan_id,
                "issuer": plan.issuer,
                "phase": phase.phase_id,
                "phase_start_year": phase.start_year,
                "phase_end_year": phase.end_year,
                "start_year": entry.get("start_year") or phase.start_year,
                "deadline_year": entry.get("deadline_year") or phase.end_year,
                "file": path.name,
                "index": index,
            }
            try:
                targets.append(PlanTarget.model_validate(entry | from_plan))
            except ValidationError as exc:
                problems += yaml_problems(exc, target_place)
    return plans, targets
