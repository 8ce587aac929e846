"""Resource limits for reading one submitted workbook, checked before a parser may spend them.

A workbook is a zip of XML parts. Everything a hostile file could make the reader
spend is bounded here, from what can be learnt without inflating or loading it:

- the file size on disk (before anything is read);
- the zip central directory: number of parts, total and per-part uncompressed size,
  compression ratio (before any part is inflated);
- every XML part's prolog: no DOCTYPE / ENTITY declarations (Excel never writes them;
  they are how "billion laughs" entity expansion works);
- each worksheet before calamine loads it: rows, columns and the cell area calamine would
  allocate (it keeps a dense rows x columns grid). A part spelt the way spreadsheet writers
  spell it is vouched for from its bytes (quick_shape: byte patterns, and expat without
  Python handlers for well-formedness); any other is streamed once with expat (scan_sheet);
- the number of sheets, the length of a cell, and a cooperative time budget per
  workbook, checked between sheets and rows.

`ReadLimits.from_env` reads the limits from CCHC_* variables (docs/security.md).
Hitting a limit raises `LimitExceeded` carrying a plain-words Finding; read_workbook
turns it into a finding on the result, never an exception.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from xml.parsers import expat

from pipelines.findings import Finding

MB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """Limits for one workbook read. Defaults suit a CCHC-1 form (tens of KB, ~100 rows)."""

    max_file_mb: float = 20.0  # compressed size on disk
    max_uncompressed_mb: float = 200.0  # all parts together, as declared by the zip directory
    max_part_mb: float = 50.0  # any one part
    max_compression_ratio: float = 200.0  # uncompressed / compressed, for parts above ratio_floor_mb
    ratio_floor_mb: float = 1.0  # small parts may compress very well; ratios count above this size
    max_zip_entries: int = 2000  # parts in the zip
    max_sheets: int = 50
    max_rows: int = 20_000  # per sheet (the highest row number used)
    max_columns: int = 1_000  # per sheet (the highest column number used; Excel allows 16,384)
    max_cells: int = 2_000_000  # rows x columns summed over the sheets read (calamine's dense grid)
    max_cell_chars: int = 32_767  # Excel's own limit: a longer cell cannot come from Excel
    max_seconds: float = 60.0  # cooperative: checked between parts, sheets and rows

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadLimits:
        """Limits from CCHC_* variables (unset or blank -> default). A bad value raises ValueError
        naming the variable, so a misconfiguration stops the run instead of silently loosening a limit."""
        values = {}
        for f in fields(cls):
            name = ENV_NAMES[f.name]
            text = (env.get(name) or "").strip()
            if not text:
                continue
            kind = int if isinstance(f.default, int) else float
            try:
                value = kind(text.replace("_", ""))
            except ValueError:
                raise ValueError(f"{name}={text!r} is not a {kind.__name__}") from None
            if not value > 0:
                raise ValueError(f"{name}={text!r} must be greater than 0")
            values[f.name] = value
        return cls(**values)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MB)


ENV_NAMES = {
    "max_file_mb": "CCHC_MAX_FILE_MB",
    "max_uncompressed_mb": "CCHC_MAX_UNCOMPRESSED_MB",
    "max_part_mb": "CCHC_MAX_PART_MB",
    "max_compression_ratio": "CCHC_MAX_COMPRESSION_RATIO",
    "ratio_floor_mb": "CCHC_RATIO_FLOOR_MB",
    "max_zip_entries": "CCHC_MAX_ZIP_ENTRIES",
    "max_sheets": "CCHC_MAX_SHEETS",
    "max_rows": "CCHC_MAX_ROWS",
    "max_columns": "CCHC_MAX_COLUMNS",
    "max_cells": "CCHC_MAX_CELLS",
    "max_cell_chars": "CCHC_MAX_CELL_CHARS",
    "max_seconds": "CCHC_MAX_SECONDS",
}


class LimitExceeded(Exception):
    """A limit was hit; `finding` says which, in plain words."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message_en)
        self.finding = finding


def _mb(n: float) -> str:
    return f"{n / MB:.1f}"


def _n(n: int) -> str:
    """1048576 -> "1.048.576" (Vietnamese grouping)."""
    return f"{n:,}".replace(",", ".")


# ----------------------------------------------------------------------------- time


class Budget:
    """A cooperative time budget: `check()` between units of work raises LimitExceeded once spent.

    The clock is injectable so tests need no timing; a hard limit (a worker process that is
    killed) belongs to whoever schedules reads.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] | None = None):
        self.seconds = seconds
        self.clock = clock or time.monotonic
        self.start = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    def check(self, stage: str = "") -> None:
        if self.elapsed >= self.seconds:
            raise LimitExceeded(
                Finding.make(
                    "WB_TIME_LIMIT",
                    "error",
                    value=stage,
                    message_vi=(
                        f"Đọc tệp quá {self.seconds:g} giây nên đã dừng; tệp bị từ chối. "
                        "Hãy xóa các sheet, dòng, cột thừa (hoặc chép số liệu sang biểu mẫu mới) rồi gửi lại."
                    ),
                    message_en=(
                        f"Reading the file took more than {self.seconds:g} seconds and was stopped; the file is refused. "
                        "Delete unneeded sheets, rows and columns (or copy the figures into a fresh form) and send it again."
                    ),
                )
            )


# ----------------------------------------------------------------------------- zip directory


def check_zip_directory(archive: zipfile.ZipFile, limits: ReadLimits) -> None:
    """Refuse a package from its central directory alone (nothing is inflated)."""
    infos = archive.infolist()
    if len(infos) > limits.max_zip_entries:
        raise LimitExceeded(
            Finding.make(
                "WB_LIMIT_PARTS",
                "error",
                value=len(infos),
                message_vi=(
                    f"Tệp gồm {len(infos)} phần bên trong, vượt giới hạn {limits.max_zip_entries}: "
                    "đây không phải một biểu mẫu báo cáo bình thường nên bị từ chối. Hãy chép số liệu sang biểu mẫu mới rồi gửi lại."
                ),
                message_en=(
                    f"The file holds {len(infos)} internal parts, over the limit of {limits.max_zip_entries}: "
                    "not a normal report form, so it is refused. Copy the figures into a fresh form and send it again."
                ),
            )
        )
    seen: set[str] = set()
    for info in infos:
        # Two entries under one name (Excel never writes that): this scan and calamine could
        # each pick a different one, so the part checked would not be the part loaded.
        key = info.filename.replace("\\", "/").lower()
        if key in seen:
            raise _damaged(info.filename)
        seen.add(key)
    total = 0
    for info in infos:
        size = info.file_size
        total += size
        ratio = size / max(info.compress_size, 1)
        too_big = size > limits.max_part_mb * MB
        too_dense = size > limits.ratio_floor_mb * MB and ratio > limits.max_compression_ratio
        if too_big or too_dense:
            raise LimitExceeded(_unpacked(info.filename, size, ratio, limits, "part" if too_big else "ratio"))
    if total > limits.max_uncompressed_mb * MB:
        raise LimitExceeded(_unpacked("", total, 0, limits, "total"))


def _unpacked(part: str, size: int, ratio: float, limits: ReadLimits, which: str) -> Finding:
    if which == "part":
        vi = f"phần '{part}' giải nén ra {_mb(size)} MB (tối đa {limits.max_part_mb:g} MB)"
        en = f"part '{part}' unpacks to {_mb(size)} MB (limit {limits.max_part_mb:g} MB)"
    elif which == "ratio":
        vi = f"phần '{part}' nén {ratio:,.0f} lần (giải nén ra {_mb(size)} MB, tối đa {limits.max_compression_ratio:g} lần)"
        en = f"part '{part}' is compressed {ratio:,.0f} times ({_mb(size)} MB unpacked; limit {limits.max_compression_ratio:g} times)"
    else:
        vi = f"toàn bộ tệp giải nén ra {_mb(size)} MB (tối đa {limits.max_uncompressed_mb:g} MB)"
        en = f"the whole file unpacks to {_mb(size)} MB (limit {limits.max_uncompressed_mb:g} MB)"
    return Finding.make(
        "WB_LIMIT_UNCOMPRESSED",
        "error",
        value=part or _mb(size),
        message_vi=(
            f"Tệp quá lớn khi giải nén: {vi}. Đây không phải một biểu mẫu báo cáo bình thường nên bị từ chối "
            "mà không giải nén. Hãy chép số liệu sang biểu mẫu mới rồi gửi lại."
        ),
        message_en=(
            f"The file is too large once unpacked: {en}. Not a normal report form, so it is refused "
            "without unpacking it. Copy the figures into a fresh form and send it again."
        ),
    )


# ----------------------------------------------------------------------------- the package in memory


# Small parts (and the heads of other parts but worksheets) inflated and checked before, per
# process, by their compressed bytes: the parts a template or an Excel version writes alike in every
# workbook (theme, styles, relationships, content types, often the workbook part) are inflated once
# per run, not once per workbook. Inflating is a function of the compressed bytes, so the same bytes
# with the same declared size and CRC pass or fail the same checks; bounded: at most
# SEEN_PARTS_KEPT entries, each of a part of at most SEEN_PART_BYTES compressed and SMALL_PART_BYTES
# inflated (some 8 MB at most; a first-come memo, nothing evicted).
_SEEN_PARTS: dict[tuple, bytes] = {}
SEEN_PARTS_KEPT = 256
SEEN_PART_BYTES = 16384


class Package:
    """A workbook's bytes, opened once as a zip. Every check reads its parts from these bytes, and
    calamine loads the same bytes (`io.BytesIO(package.data)`): the file is not opened again between
    the checks and the load, so what was checked is what is loaded.

    A stored or deflated part is inflated here with zlib straight from the bytes (located as zipfile
    and calamine's zip reader locate it: the central directory's offset, then the local header's
    name and extra lengths); anything else (another compression method, encryption, a local header
    that disagrees with the directory) goes through zipfile, which refuses what it cannot read.
    """

    def __init__(self, data: bytes):
        self.data = data
        self._view = memoryview(data)
        self.archive = zipfile.ZipFile(io.BytesIO(data))
        self.infos = {info.filename: info for info in self.archive.infolist()}
        self._read: dict[str, bytes] = {}  # small parts already inflated and checked
        self._raw: dict[str, memoryview | None] = {}
        self._started: dict[str, tuple[zlib._Decompress, bytes, int]] = {}  # heads to go on from

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *_exc) -> None:
        self.archive.close()

    def _compressed(self, info: zipfile.ZipInfo) -> memoryview | None:
        """The part's compressed bytes, or None when zipfile must read it (and decide)."""
        if info.filename in self._raw:
            return self._raw[info.filename]
        raw = None
        offset = info.header_offset
        header = self._view[offset : offset + 30]
        if (
            info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            and not info.flag_bits & 0x61  # encrypted, patched or strongly encrypted: zipfile refuses
            and len(header) == 30
            and header[:4] == b"PK\x03\x04"
        ):
            flags, name_length, extra_length = (struct.unpack_from("<H", header, 6)[0], *struct.unpack_from("<HH", header, 26))
            start = offset + 30 + name_length + extra_length
            name = bytes(self._view[offset + 30 : offset + 30 + name_length])
            try:  # the name in the local header must be the directory's, as zipfile requires
                same = name.decode("utf-8" if flags & 0x800 else "cp437") == info.orig_filename
            except UnicodeDecodeError:
                same = False
            if same and start + info.compress_size <= len(self.data):
                raw = self._view[start : start + info.compress_size]
        self._raw[info.filename] = raw
        return raw

    def head(self, part: str, size: int, keep: bool = False) -> bytes | None:
        """Up to `size` first bytes of a part, inflating no more than that (no CRC check: the
        whole part is checked by whoever reads it); None when zipfile must decide. With keep, a
        later read() of the part goes on from here instead of inflating the head again."""
        info = self.infos.get(part)
        raw = self._compressed(info) if info is not None else None
        if raw is None:
            return None
        if info.compress_type == zipfile.ZIP_STORED:
            return bytes(raw[:size])
        key = None if keep or len(raw) > SEEN_PART_BYTES else ("head", bytes(raw), size)
        head = _SEEN_PARTS.get(key) if key is not None else None
        if head is not None:
            return head
        inflater = zlib.decompressobj(-15)
        try:
            head = inflater.decompress(raw[:size], size)
        except zlib.error:
            return None
        if keep and len(self._started) < KEEP_HEADS:
            self._started[part] = (inflater, head, min(size, len(raw)) - len(inflater.unconsumed_tail))
        elif key is not None and len(_SEEN_PARTS) < SEEN_PARTS_KEPT:
            _SEEN_PARTS[key] = head
        return head

    def read(self, part: str) -> bytes:
        """A whole part, checked as zipfile checks it: no more and no fewer bytes than the directory
        declares, and the CRC. KeyError when there is no such part; LimitExceeded (damaged) otherwise."""
        if part in self._read:
            return self._read[part]
        info = self.infos[part]
        raw = self._compressed(info)
        if raw is None:
            try:
                return self.archive.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
                raise _damaged(part) from exc
        small = info.file_size <= SMALL_PART_BYTES and len(raw) <= SEEN_PART_BYTES
        key = ("part", bytes(raw), info.compress_type, info.file_size, info.CRC) if small else None
        data = _SEEN_PARTS.get(key) if key is not None else None
        if data is not None:  # the same compressed bytes, declared size and CRC, checked before
            self._read[part] = data
            return data
        if info.compress_type == zipfile.ZIP_STORED:
            data, complete = bytes(raw), True
        else:
            inflater, head, used = self._started.pop(part, None) or (zlib.decompressobj(-15), b"", 0)
            try:  # at most one byte more than declared: a lie shows
                data = head + inflater.decompress(raw[used:], info.file_size + 1 - len(head))
            except zlib.error as exc:
                raise _damaged(part) from exc
            complete = inflater.eof
        if not complete or len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            raise _damaged(part)
        if len(data) <= SMALL_PART_BYTES:
            self._read[part] = data  # read again by _sheet_parts; bigger parts are not kept
            if key is not None and len(_SEEN_PARTS) < SEEN_PARTS_KEPT:
                _SEEN_PARTS[key] = data
        return data


# ----------------------------------------------------------------------------- XML


class _Stop(Exception):
    pass


def _forbidden_xml(part: str, what: str) -> LimitExceeded:
    return LimitExceeded(
        Finding.make(
            "WB_XML_FORBIDDEN",
            "error",
            value=part,
            message_vi=(
                f"Phần '{part}' của tệp chứa khai báo XML ({what}) mà Excel không bao giờ tạo ra — "
                "có thể là tệp độc hại; tệp bị từ chối. Hãy chép số liệu sang biểu mẫu mới rồi gửi lại."
            ),
            message_en=(
                f"Part '{part}' of the file holds an XML declaration ({what}) that Excel never writes — "
                "possibly a hostile file; refused. Copy the figures into a fresh form and send it again."
            ),
        )
    )


def _damaged(part: str) -> LimitExceeded:
    return LimitExceeded(
        Finding.make(
            "WB_UNREADABLE",
            "error",
            value=part,
            message_vi=(
                f"Không đọc được tệp Excel: phần '{part}' bị hỏng. Hãy mở tệp bằng Excel, lưu lại dạng .xlsx rồi gửi lại; "
                "nếu Excel cũng không mở được, hãy gửi lại tệp gốc."
            ),
            message_en=(
                f"The Excel file cannot be read: part '{part}' is damaged. Open it in Excel, save it as .xlsx and send it "
                "again; if Excel cannot open it either, send the original file again."
            ),
        )
    )


def _new_parser(part: str) -> expat.XMLParserType:
    parser = expat.ParserCreate()

    def doctype(*_args):
        raise _forbidden_xml(part, "DOCTYPE")

    def entity(*_args):
        raise _forbidden_xml(part, "ENTITY")

    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity

    def external(*_args):
        raise _forbidden_xml(part, "external entity")

    parser.StartDoctypeDeclHandler = doctype
    parser.ExternalEntityRefHandler = external  # nothing is ever fetched
    return parser


def _feed(archive: zipfile.ZipFile, part: str, parser, budget: Budget | None, chunk: int = 1 << 16) -> None:
    try:
        with archive.open(part) as handle:
            while True:
                data = handle.read(chunk)
                if budget is not None:
                    budget.check(part)
                parser.Parse(data, not data)
                if not data:
                    return
    except (_Stop, LimitExceeded):
        raise
    except (
        expat.ExpatError,
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        ValueError,
        RuntimeError,
        NotImplementedError,
    ) as exc:
        raise _damaged(part) from exc


# The prolog Excel, openpyxl, xlsxwriter and LibreOffice write: an optional UTF-8 byte order mark,
# an optional plain XML declaration (version 1.0, UTF-8), white space, then the root element's
# start tag with ASCII names and values. Nothing can hide before the root element (no DOCTYPE,
# comment or processing instruction), the bytes are UTF-8 (so byte patterns mean what they say),
# and expat, which read prologs up to the root element, would accept it just the same.
_PLAIN_PROLOG = re.compile(
    rb"""
    (?:\xef\xbb\xbf)?                                                  # a UTF-8 byte order mark
    (?:<\?xml [ \t\r\n]+ version [ \t\r\n]*=[ \t\r\n]* (?:"1\.0"|'1\.0')       # an XML declaration
       (?:[ \t\r\n]+ encoding [ \t\r\n]*=[ \t\r\n]* (?:"(?i:utf-8)"|'(?i:utf-8)'))?
       (?:[ \t\r\n]+ standalone [ \t\r\n]*=[ \t\r\n]* (?:"(?:yes|no)"|'(?:yes|no)'))?
       [ \t\r\n]* \?>)?
    [ \t\r\n]* <[A-Za-z_][A-Za-z0-9_.:\-]*                             # the root element
    ((?:[ \t\r\n]+ [A-Za-z_][A-Za-z0-9_.:\-]* [ \t\r\n]*=[ \t\r\n]*          # its attributes: printable
        (?:"[ !\#-%'-;=-~]*"|'[ -%(-;=-~]*'))*)                        # ASCII, no &, < or quote
    [ \t\r\n]* /?>
    """,
    re.VERBOSE,
)
_ATTRIBUTE_NAME = re.compile(rb"[ \t\r\n]+([A-Za-z_][A-Za-z0-9_.:\-]*)[ \t\r\n]*=")


def plain_prolog(head: bytes) -> bool:
    """The part starts with a plain prolog and root start tag (_PLAIN_PROLOG), no attribute twice."""
    match = _PLAIN_PROLOG.match(head)
    if match is None:
        return False
    names = _ATTRIBUTE_NAME.findall(match.group(1))
    return len(names) == len(set(names))


# The streaming prolog check read each part through zipfile in chunks of this size: a part this
# small was read to its end (size and CRC checked), of a bigger one this much was inflated. The
# quick prolog check reads the same bytes, so it finds the same damage.
SMALL_PART_BYTES = 4096
KEEP_HEADS = 64  # worksheet heads whose inflater is kept for the whole read that follows


def check_well_formed(data: bytes, part: str) -> None:
    """Parse a whole part with expat, no handler but the DOCTYPE/ENTITY ones: refuses what the
    streaming scan refused as damaged (not well-formed) or forbidden, at C speed."""
    try:
        _new_parser(part).Parse(data, True)
    except expat.ExpatError as exc:
        raise _damaged(part) from exc


def check_xml_prologs(archive: zipfile.ZipFile | Package, parts: Iterable[str], budget: Budget | None = None) -> None:
    """Refuse DOCTYPE/ENTITY in any XML part. Reads each part only up to its root element.

    With a Package, a part whose first bytes are a plain prolog (plain_prolog) is settled from
    those bytes alone (a small part is read whole, its size and CRC checked); any other prolog (a
    DOCTYPE, a comment, another encoding, a head that does not reach the root element) is parsed
    with expat as before."""
    package = archive if isinstance(archive, Package) else None
    archive = package.archive if package is not None else archive
    for part in parts:
        if package is not None:
            if budget is not None:
                budget.check(part)
            info = package.infos.get(part)
            if info is not None and info.file_size <= SMALL_PART_BYTES:
                head = package.read(part)
            else:  # a worksheet is read whole next (workbook._quick_check): it goes on from this head
                head = package.head(part, SMALL_PART_BYTES, keep=part.startswith("xl/worksheets/"))
            if head is not None and plain_prolog(head):
                continue
        parser = _new_parser(part)

        def root(*_args):
            raise _Stop

        parser.StartElementHandler = root
        try:
            _feed(archive, part, parser, budget, chunk=4096)
        except _Stop:
            continue


_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")
_RANGE = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)(?::\$?([A-Za-z]{1,3})\$?(\d+))?$")


@functools.lru_cache(maxsize=4096)
def _col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


@dataclass
class SheetShape:
    rows: int = 0  # highest row number holding a cell (1-based)
    columns: int = 0  # highest column number holding a cell (1-based)
    cells: int = 0  # <c> elements seen
    uncached: set[str] = field(default_factory=set)  # formula cells without a cached value ("E14")

    @property
    def area(self) -> int:
        return self.rows * self.columns


def _letters(col: int) -> str:
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def scan_sheet(
    archive: zipfile.ZipFile,
    part: str,
    sheet: str,
    limits: ReadLimits,
    budget: Budget | None = None,
    cells_left: int | None = None,
) -> SheetShape:
    """Stream a worksheet part once (expat, no tree) and refuse it as soon as it exceeds a limit.

    Tracks what calamine would allocate: the bounding box of the cells (its grid is dense),
    including a declared <dimension> that may lie (it can be used to reserve memory). On the
    way it notes the formula cells that have no cached value (calamine reads those as "").
    """
    shape = SheetShape()
    cells_left = limits.max_cells if cells_left is None else cells_left
    state = {"row": 0, "col": 0, "n": 0, "cell": (0, 0), "formula": False, "in_v": False}
    cached: list[str] = []

    def over(kind: str, seen: int) -> LimitExceeded:
        return LimitExceeded(over_limit(kind, sheet, seen, limits, cells_left))

    def start(tag: str, attrs: dict) -> None:
        local = tag.rpartition(":")[2]
        if local == "c":
            ref = _REF.match(attrs.get("r") or "")
            if ref:
                col, row = _col_number(ref.group(1)), int(ref.group(2))
                state["col"] = col
            else:
                state["col"] += 1
                col, row = state["col"], state["row"]
            if row > limits.max_rows:
                raise over("rows", row)
            shape.rows = max(shape.rows, row)
            shape.cells += 1
            shape.columns = max(shape.columns, col)
            if col > limits.max_columns:
                raise over("columns", col)
            if shape.rows * shape.columns > cells_left:
                raise over("cells", shape.area)
            state["cell"] = (col, row)  # its "E14" name is only built for a formula without a cached value
            state["formula"] = False
            cached.clear()
        elif local == "v":
            state["in_v"] = True
        elif local == "f":
            state["formula"] = True
        elif local == "row":
            r = attrs.get("r")
            state["row"] = int(r) if r and r.isdigit() else state["row"] + 1
            state["col"] = 0
            state["n"] += 1
            if state["n"] % 512 == 0 and budget is not None:
                budget.check(sheet)
            if state["row"] > limits.max_rows:
                raise over("rows", state["row"])
        elif local == "dimension":
            m = _RANGE.match(attrs.get("ref") or "")
            if m:
                rows = int(m.group(4) or m.group(2))
                cols = _col_number(m.group(3) or m.group(1))
                if rows > limits.max_rows:
                    raise over("rows", rows)
                if cols > limits.max_columns:
                    raise over("columns", cols)
                if rows * cols > cells_left:
                    raise over("cells", rows * cols)

    def end(tag: str) -> None:
        local = tag.rpartition(":")[2]
        if local == "v":
            state["in_v"] = False
        elif local == "c" and state["formula"] and not "".join(cached).strip():
            col, row = state["cell"]
            shape.uncached.add(f"{_letters(col)}{row}")

    def text(data: str) -> None:
        if state["in_v"]:
            cached.append(data)

    parser = _new_parser(part)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.buffer_text = True
    _feed(archive, part, parser, budget)
    return shape


# The quick check of a worksheet part: a few byte patterns over the inflated part. It answers only
# "certainly within the limits" (the sheet is then loaded without scan_sheet) or "not certain"
# (scan_sheet streams it, as it does any sheet). It holds for a part that expat also finds well
# formed (check_well_formed: one start tag per element, whitespace between attributes, no attribute
# twice) and means that every position calamine (or scan_sheet) could give a cell or a row is
# written out, in one form both read alike:
# - every <c> and <row> start tag begins `<c r="A1"` / `<row r="1"`: the position first (so it is
#   the only one), one letter A-Z and 1-3 digits without a leading zero;
# - no c, row (or f) element has a namespace prefix (calamine reads <x:c> as a cell; a prefixed
#   attribute such as x:r is not a position, for calamine and expat alike);
# - the <dimension> (if any) is `<dimension ref="A1:Z999"/>`, the same kind of references;
# - the part is UTF-8 with a plain prolog (plain_prolog), so the bytes mean what they say.
# So a sheet spans at most 999 rows x 26 columns (A-Z); the sheets together must fit max_cells.
QUICK_PART_BYTES = 4 * MB  # a bigger worksheet part is always streamed by scan_sheet
QUICK_ROWS = 999  # row numbers of 1-3 digits
QUICK_COLUMNS = 26  # one-letter columns, A-Z
_ODD_CELL = re.compile(rb'<c(?! r="[A-Z][1-9][0-9]{0,2}"[ />])[ \t\r\n/>]')
_ODD_ROW = re.compile(rb'<row(?! r="[1-9][0-9]{0,2}"[ />])[ \t\r\n/>]')
_PREFIXED = re.compile(rb":(?:c|row|f)[ \t\r\n/>]")
_ODD_DIMENSION = re.compile(rb'dimension(?!(?<=<dimension) ref="[A-Z][1-9][0-9]{0,2}(?::[A-Z][1-9][0-9]{0,2})?" ?/>)')
_FORMULA = re.compile(rb"<f[ \t\r\n/>]")


@dataclass(frozen=True)
class QuickShape:
    area: int  # an upper bound of the rows x columns calamine would allocate (and scan_sheet would count)
    formulas: bool  # the part may hold formulas: which lack a cached value is for quick_uncached (or scan_sheet)


def quick_shape(data: bytes, limits: ReadLimits) -> QuickShape | None:
    """An upper bound of a worksheet part's shape from its bytes alone, when it is certainly within
    the row and column limits; None when not certain (the part must be streamed by scan_sheet).
    Only valid together with check_well_formed(data): the patterns assume well-formed XML."""
    if limits.max_rows < QUICK_ROWS or limits.max_columns < QUICK_COLUMNS or not plain_prolog(data):
        return None
    for odd in (_ODD_CELL, _ODD_ROW, _PREFIXED, _ODD_DIMENSION):
        if odd.search(data):
            return None
    return QuickShape(area=QUICK_ROWS * QUICK_COLUMNS, formulas=_FORMULA.search(data) is not None)


_TAG_ATTRS = rb"""(?:[ \t\r\n]+[^ \t\r\n=/>]+[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*'))*[ \t\r\n]*(/?)>"""
_CELL_START = re.compile(rb'<c r="([A-Z][1-9][0-9]{0,2})"' + _TAG_ATTRS)
_VALUE_START = re.compile(rb"<v(?=[ \t\r\n/>])" + _TAG_ATTRS)


def quick_uncached(data: bytes) -> set[str] | None:
    """The formula cells without a cached value ("E14"), as scan_sheet finds them, for a part that
    passed quick_shape and check_well_formed; None when a cell is not plain enough to tell from its
    bytes (a formula outside a cell, cells inside cells, a comment, CDATA or reference in a cell):
    scan_sheet then decides."""
    missing: set[str] = set()
    done: set[int] = set()
    for formula in _FORMULA.finditer(data):
        start = data.rfind(b'<c r="', 0, formula.start())
        tag = _CELL_START.match(data, start) if start >= 0 else None
        if tag is None or tag.group(2) or tag.end() > formula.start():
            return None  # no cell open before the formula
        end = data.find(b"</c>", tag.end())
        if end < formula.start() or data.find(b"<c ", tag.end(), end) >= 0:
            return None  # the formula is not inside this cell, or cells nest
        if start in done:
            continue
        done.add(start)
        body = data[tag.end() : end]
        if b"<!" in body or b"<?" in body or b"&" in body or b":v" in body:
            return None
        cached = []
        for value in _VALUE_START.finditer(body):
            if value.group(1):
                continue  # <v/>
            close = body.find(b"</v>", value.end())
            if close < 0 or b"<" in body[value.end() : close]:
                return None
            cached.append(body[value.end() : close])
        if not b"".join(cached).decode("utf-8", "replace").strip():
            missing.add(tag.group(1).decode("ascii"))
    return missing


def over_limit(kind: str, sheet: str, seen: int, limits: ReadLimits, cells_left: int) -> Finding:
    if kind == "rows":
        vi = f"có dòng số {_n(seen)}, vượt giới hạn {_n(limits.max_rows)} dòng"
        en = f"has a row numbered {seen:,}, over the limit of {limits.max_rows:,} rows"
        fix_vi, fix_en = "xóa các dòng thừa bên dưới bảng", "delete the extra rows below the table"
        rule = "WB_LIMIT_ROWS"
    elif kind == "columns":
        vi = f"có cột thứ {_n(seen)}, vượt giới hạn {_n(limits.max_columns)} cột"
        en = f"has a column numbered {seen:,}, over the limit of {limits.max_columns:,} columns"
        fix_vi, fix_en = "xóa các cột thừa bên phải bảng", "delete the extra columns right of the table"
        rule = "WB_LIMIT_COLUMNS"
    else:
        vi = f"trải trên {_n(seen)} ô, vượt giới hạn còn lại {_n(cells_left)} ô"
        en = f"spans {seen:,} cells, over the remaining limit of {cells_left:,} cells"
        fix_vi, fix_en = "xóa các dòng, cột thừa", "delete the extra rows and columns"
        rule = "WB_LIMIT_CELLS"
    return Finding.make(
        rule,
        "error",
        sheet=sheet,
        value=seen,
        message_vi=(
            f"Sheet '{sheet}' {vi}; sheet này không được đọc. Hãy {fix_vi} "
            "(Ctrl+End cho biết ô cuối cùng Excel đang dùng), lưu lại rồi gửi lại."
        ),
        message_en=(
            f"Sheet '{sheet}' {en}; the sheet was not read. Please {fix_en} "
            "(Ctrl+End shows the last cell Excel uses), save, and send it again."
        ),
    )


def too_many_sheets(count: int, limits: ReadLimits) -> Finding:
    return Finding.make(
        "WB_LIMIT_SHEETS",
        "error",
        value=count,
        message_vi=(
            f"Tệp có {count} sheet, vượt giới hạn {limits.max_sheets} sheet; tệp bị từ chối. "
            "Hãy chỉ giữ các sheet của biểu mẫu (Thông tin chung, Số liệu, Nhiệm vụ) rồi gửi lại."
        ),
        message_en=(
            f"The file has {count} sheets, over the limit of {limits.max_sheets}; refused. "
            "Keep only the form's sheets (Thông tin chung, Số liệu, Nhiệm vụ) and send it again."
        ),
    )


def cell_too_long(sheet: str, cell: str, length: int, limits: ReadLimits) -> Finding:
    return Finding.make(
        "WB_CELL_TOO_LONG",
        "error",
        sheet=sheet,
        cell=cell,
        value=length,
        message_vi=(
            f"Ô {sheet}!{cell} dài {_n(length)} ký tự, vượt giới hạn {_n(limits.max_cell_chars)} ký tự (giới hạn của chính Excel); "
            "nội dung ô bị bỏ qua. Hãy rút ngắn nội dung ô rồi gửi lại."
        ),
        message_en=(
            f"Cell {sheet}!{cell} holds {length:,} characters, over the limit of {limits.max_cell_chars:,} "
            "(Excel's own limit); the cell was ignored. Shorten it and send the file again."
        ),
    )
