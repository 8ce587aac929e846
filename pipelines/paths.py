"""Where an installation keeps its private files, from its settings alone (no heavy imports: the
command line's warm-worker client reads it before anything else is loaded)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

DEFAULT_DATABASE = "data/curated/cchc.duckdb"
DEFAULT_CATALOG = "catalog"
DEFAULT_RAW = "data/raw"


def catalog_dir_of(env: Mapping[str, str]) -> str:
    """The catalog folder the settings name (CCHC_CATALOG_DIR; relative to where a command runs)."""
    return env.get("CCHC_CATALOG_DIR", DEFAULT_CATALOG)


def work_folder(database_path: str, work_dir: str = "") -> Path:
    """The private working folder: `work_dir` (CCHC_WORK_DIR), or `.cchc-work` beside the
    published database. Relative paths are relative to the working directory of the run."""
    return Path(work_dir) if work_dir else Path(database_path).parent / ".cchc-work"


def work_folder_of(env: Mapping[str, str]) -> Path:
    """work_folder() from CCHC_DATABASE and CCHC_WORK_DIR."""
    return work_folder(env.get("CCHC_DATABASE", DEFAULT_DATABASE), env.get("CCHC_WORK_DIR", ""))


def register_file(raw_dir: str, receipts_register: str = "") -> Path:
    """The receipts register's file: `receipts_register` (CCHC_RECEIPTS_REGISTER), or
    `receipts.csv` in the raw folder (which may not exist)."""
    return Path(receipts_register) if receipts_register else Path(raw_dir) / "receipts.csv"


def register_file_of(env: Mapping[str, str]) -> Path:
    """register_file() from CCHC_RAW_DIR and CCHC_RECEIPTS_REGISTER."""
    return register_file(env.get("CCHC_RAW_DIR", DEFAULT_RAW), env.get("CCHC_RECEIPTS_REGISTER", ""))
