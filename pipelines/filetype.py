"""What a submitted file really is, from its content (never its extension), and the plain-words
refusal for anything that is not an .xlsx workbook.

Signatures: zip (PK..) whose directory holds xl/workbook.xml (a workbook), word/document.xml
(Word), ppt/presentation.xml, an OpenDocument mimetype, or none of these; an OLE2 compound
file (D0 CF 11 E0) whose directory names an EncryptedPackage stream (a password-protected
.xlsx), a Workbook/Book stream (an old .xls) or a WordDocument stream (.doc); %PDF; HTML and
MHTML web pages (what "export to Excel" buttons often produce); the Excel 2003 XML format;
RTF; text (CSV, tab-separated, "Unicode text"); pictures and other archives.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.findings import Finding

HEAD_BYTES = 64 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


@dataclass(frozen=True)
class FileKind:
    """kind: one of KINDS; detail: a short note for the log (never shown to the sender)."""

    kind: str
    detail: str = ""

    @property
    def is_workbook(self) -> bool:
        return self.kind == "xlsx"


KINDS = (
    "xlsx",
    "empty",
    "text",
    "xls",
    "xlsb",
    "excel2003xml",
    "html",
    "pdf",
    "docx",
    "doc",
    "rtf",
    "encrypted",
    "truncated",
    "pptx",
    "ods",
    "zip",
    "ole",
    "image",
    "archive",
    "xml",
    "binary",
)

_OTHER_MAGICS = (
    (b"\x89PNG\r\n\x1a\n", "image", "PNG"),
    (b"\xff\xd8\xff", "image", "JPEG"),
    (b"GIF87a", "image", "GIF"),
    (b"GIF89a", "image", "GIF"),
    (b"II*\x00", "image", "TIFF"),
    (b"MM\x00*", "image", "TIFF"),
    (b"Rar!\x1a\x07", "archive", "RAR"),
    (b"7z\xbc\xaf\x27\x1c", "archive", "7z"),
    (b"\x1f\x8b", "archive", "gzip"),
)


def sniff(path: Path, size: int | None = None, data: bytes | None = None) -> FileKind:
    """Classify a file by its bytes. Reads at most HEAD_BYTES, plus the zip directory or the
    OLE2 directory sectors when the signature calls for them. With `data` (the whole file, already
    read), nothing is read from disk: the kind is that of these bytes."""
    path = Path(path)
    if data is not None:
        size = len(data)
    size = path.stat().st_size if size is None else size
    if size == 0:
        return FileKind("empty")
    if data is not None:
        head = data[:HEAD_BYTES]
    else:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    if head.startswith(ZIP_MAGICS):
        return _sniff_zip(path if data is None else io.BytesIO(data))
    if head.startswith(OLE_MAGIC):
        return _sniff_ole(path if data is None else data)
    if head.startswith(b"%PDF-"):
        return FileKind("pdf")
    for magic, kind, detail in _OTHER_MAGICS:
        if head.startswith(magic):
            return FileKind(kind, detail)
    if b"%PDF-" in head[:1024]:  # a PDF may start with a few junk bytes
        return FileKind("pdf")
    kind = _sniff_text(head)
    if kind.kind == "binary" and _zip_directory_at_end(path if data is None else data, size):
        return FileKind("truncated", "zip directory without a zip signature: damaged")
    return kind


def _zip_directory_at_end(path: Path | bytes, size: int) -> bool:
    """A zip's end-of-directory record sits in its last 64 KB: a file that has one but does not
    start like a zip is a workbook damaged in transfer, not some other kind of file."""
    if isinstance(path, bytes):
        return b"PK\x05\x06" in path[max(0, size - HEAD_BYTES - 22) :]
    with open(path, "rb") as handle:
        handle.seek(max(0, size - HEAD_BYTES - 22))
        return b"PK\x05\x06" in handle.read()


def _sniff_zip(path: Path | io.BytesIO) -> FileKind:
    try:
        with zipfile.ZipFile(path) as archive:
            return zip_kind(archive)
    except zipfile.BadZipFile as exc:
        # A zip signature with no readable central directory: the end of the file is missing.
        return FileKind("truncated", str(exc))
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        return FileKind("truncated", f"{type(exc).__name__}: {exc}")


def zip_kind(archive: zipfile.ZipFile) -> FileKind:
    """What an open zip is, from its directory (and a small `mimetype` entry). Raises what zipfile
    raises on a damaged `mimetype` entry (sniff answers "truncated" for those)."""
    names = set(archive.namelist())
    mimetype = b""
    if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
        mimetype = archive.read("mimetype")
    lower = {n.lower() for n in names}
    if "xl/workbook.xml" in lower:
        return FileKind("xlsx")
    if "xl/workbook.bin" in lower:
        return FileKind("xlsb")
    if "word/document.xml" in lower:
        return FileKind("docx")
    if "ppt/presentation.xml" in lower:
        return FileKind("pptx")
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        return FileKind("ods" if b"spreadsheet" in mimetype else "zip", mimetype.decode("ascii", "replace"))
    return FileKind("zip", f"{len(names)} entries")


# ---------------------------------------------------------------------------- OLE2 (compound file)

_FREE, _END, _FATSECT, _DIFSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC


def ole_stream_names(data: bytes) -> set[str]:
    """Names in an OLE2 compound file's directory (MS-CFB). Bounded: every chain walk stops at
    the number of sectors the data can hold, and a loop in a chain ends the walk."""
    if len(data) < 512 or not data.startswith(OLE_MAGIC):
        raise ValueError("not a compound file")
    shift = struct.unpack_from("<H", data, 30)[0]
    if shift not in (9, 12):
        raise ValueError(f"bad sector shift {shift}")
    sector = 1 << shift
    n_sectors = (len(data) - 512) // sector + 1
    first_dir = struct.unpack_from("<I", data, 48)[0]
    first_difat, n_difat = struct.unpack_from("<II", data, 68)

    def read(index: int) -> bytes:
        offset = (index + 1) * sector
        if offset >= len(data):
            raise ValueError(f"sector {index} outside the file")
        return data[offset : offset + sector].ljust(sector, b"\xff")

    fat_sectors = [s for s in struct.unpack_from("<109I", data, 76) if s < _DIFSECT]
    difat, seen = first_difat, set()
    while difat < _DIFSECT and difat not in seen and len(seen) < n_sectors and n_difat:
        seen.add(difat)
        entries = struct.unpack(f"<{sector // 4}I", read(difat))
        fat_sectors += [s for s in entries[:-1] if s < _DIFSECT]
        difat = entries[-1]
    fat: list[int] = []
    for s in fat_sectors[:n_sectors]:
        fat += struct.unpack(f"<{sector // 4}I", read(s))
    names: set[str] = set()
    current, visited = first_dir, set()
    while current < _DIFSECT and current not in visited and len(visited) < n_sectors:
        visited.add(current)
        block = read(current)
        for off in range(0, len(block) - 127, 128):
            length = struct.unpack_from("<H", block, off + 64)[0]
            kind = block[off + 66]
            if kind in (1, 2, 5) and 2 <= length <= 64:
                names.add(block[off : off + length - 2].decode("utf-16-le", "replace"))
        current = fat[current] if current < len(fat) else _END
    return names


def _sniff_ole(path: Path | bytes) -> FileKind:
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    try:
        names = ole_stream_names(data)
    except (ValueError, struct.error, IndexError) as exc:
        return FileKind("ole", f"unparsable compound file: {exc}")
    if "EncryptedPackage" in names:
        return FileKind("encrypted", "EncryptedPackage")
    if names & {"Workbook", "Book"}:
        return FileKind("xls")
    if "WordDocument" in names:
        return FileKind("doc")
    return FileKind("ole", ", ".join(sorted(names))[:200])


# ---------------------------------------------------------------------------- text


def _sniff_text(head: bytes) -> FileKind:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "replace")
    else:
        if head.count(b"\x00") > len(head) // 100:
            return FileKind("binary")
        text = head.decode("utf-8", "replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f\x1a")
    if controls > max(2, len(text) // 100):
        return FileKind("binary")
    low = text.lstrip("\ufeff \t\r\n").lower()
    start = low[:2048]
    if start.startswith("{\\rtf"):
        return FileKind("rtf")
    if start.startswith("mime-version:") or "content-type: multipart/related" in start:
        return FileKind("html", "MHTML")
    if start.startswith("<!doctype html") or any(tag in start for tag in ("<html", "<body", "<table", "<head")):
        return FileKind("html")
    if start.startswith("<?xml") or start.startswith("<"):
        if "urn:schemas-microsoft-com:office:spreadsheet" in low:
            return FileKind("excel2003xml")
        if "<html" in low:
            return FileKind("html")
        return FileKind("xml")
    return FileKind("text")


# ---------------------------------------------------------------------------- refusals

_SAVE_VI = "hãy mở tệp bằng Excel, chọn Lưu thành (Save As) dạng Excel Workbook (.xlsx) rồi gửi lại"
_SAVE_EN = "open it in Excel, Save As Excel Workbook (.xlsx), and send it again"
_FORM_VI = "hãy điền số liệu vào biểu mẫu Excel (.xlsx) và gửi lại tệp .xlsx đó"
_FORM_EN = "fill in the Excel form (.xlsx) and send that .xlsx file"

# kind -> (rule id, what it is in Vietnamese, in English, what to do in Vietnamese, in English)
REFUSALS: dict[str, tuple[str, str, str, str, str]] = {
    "empty": (
        "WB_FILE_EMPTY",
        "Tệp rỗng (0 byte), không có nội dung",
        "The file is empty (0 bytes)",
        "hãy kiểm tra lại tệp và gửi lại",
        "check the file and send it again",
    ),
    "text": (
        "WB_FILE_TEXT",
        "Đây là tệp CSV/văn bản, không phải bảng tính Excel",
        "This is a CSV/text file, not an Excel workbook",
        _SAVE_VI,
        _SAVE_EN,
    ),
    "xls": (
        "WB_FILE_XLS",
        "Đây là tệp Excel định dạng cũ .xls (Excel 97-2003)",
        "This is an old .xls workbook (Excel 97-2003)",
        _SAVE_VI,
        _SAVE_EN,
    ),
    "xlsb": ("WB_FILE_XLS", "Đây là tệp Excel dạng nhị phân .xlsb", "This is a binary .xlsb workbook", _SAVE_VI, _SAVE_EN),
    "excel2003xml": (
        "WB_FILE_XLS",
        "Đây là tệp Excel dạng XML cũ (Excel 2003)",
        "This is an old Excel 2003 XML spreadsheet",
        _SAVE_VI,
        _SAVE_EN,
    ),
    "html": (
        "WB_FILE_HTML",
        "Đây là trang web (HTML), không phải bảng tính Excel (thường do phần mềm xuất ra rồi đặt tên .xls/.xlsx)",
        "This is a web page (HTML), not an Excel workbook (often exported by software and given an .xls/.xlsx name)",
        _SAVE_VI,
        _SAVE_EN,
    ),
    "pdf": (
        "WB_FILE_PDF",
        "Đây là tệp PDF, không phải bảng tính Excel",
        "This is a PDF file, not an Excel workbook",
        "hãy gửi lại tệp biểu mẫu .xlsx đã điền (không gửi bản in hay bản scan PDF)",
        "send the filled-in .xlsx form again (not a PDF print or scan)",
    ),
    "docx": (
        "WB_FILE_WORD",
        "Đây là văn bản Word (.docx), không phải bảng tính Excel",
        "This is a Word document (.docx), not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "doc": (
        "WB_FILE_WORD",
        "Đây là văn bản Word (.doc), không phải bảng tính Excel",
        "This is a Word document (.doc), not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "rtf": (
        "WB_FILE_WORD",
        "Đây là văn bản Word (RTF), không phải bảng tính Excel",
        "This is a Word (RTF) document, not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "encrypted": (
        "WB_FILE_ENCRYPTED",
        "Tệp được đặt mật khẩu nên không đọc được",
        "The file is password-protected, so it cannot be read",
        "hãy mở bằng Excel, gỡ mật khẩu (Tệp > Thông tin > Bảo vệ sổ làm việc > Mã hóa bằng mật khẩu, xóa mật khẩu), lưu lại rồi gửi lại",
        "open it in Excel, remove the password (File > Info > Protect Workbook > Encrypt with Password, clear it), save, and send it again",
    ),
    "truncated": (
        "WB_FILE_TRUNCATED",
        "Tệp không đầy đủ (bị hỏng khi gửi hoặc tải về)",
        "The file is incomplete (damaged in transfer)",
        "hãy gửi lại tệp",
        "send it again",
    ),
    "pptx": (
        "WB_FILE_OTHER",
        "Đây là tệp PowerPoint, không phải bảng tính Excel",
        "This is a PowerPoint file, not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "ods": (
        "WB_FILE_OTHER",
        "Đây là bảng tính OpenDocument (.ods), không phải .xlsx",
        "This is an OpenDocument spreadsheet (.ods), not an .xlsx workbook",
        "hãy chọn Lưu thành (Save As) dạng Excel 2007-365 (.xlsx) rồi gửi lại",
        "Save As Excel 2007-365 (.xlsx) and send it again",
    ),
    "zip": (
        "WB_FILE_OTHER",
        "Đây là tệp nén (.zip), không phải bảng tính Excel",
        "This is a zip archive, not an Excel workbook",
        "hãy giải nén và gửi riêng tệp .xlsx",
        "extract it and send the .xlsx file itself",
    ),
    "archive": (
        "WB_FILE_OTHER",
        "Đây là tệp nén (RAR/7z/gzip), không phải bảng tính Excel",
        "This is a compressed archive (RAR/7z/gzip), not an Excel workbook",
        "hãy giải nén và gửi riêng tệp .xlsx",
        "extract it and send the .xlsx file itself",
    ),
    "image": (
        "WB_FILE_OTHER",
        "Đây là tệp ảnh, không phải bảng tính Excel",
        "This is a picture, not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "ole": (
        "WB_FILE_OTHER",
        "Đây là tệp Office dạng cũ nhưng không phải bảng tính Excel",
        "This is an old-format Office file but not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "xml": (
        "WB_FILE_OTHER",
        "Đây là tệp XML, không phải bảng tính Excel",
        "This is an XML file, not an Excel workbook",
        _FORM_VI,
        _FORM_EN,
    ),
    "binary": (
        "WB_FILE_OTHER",
        "Không nhận ra định dạng tệp: tệp bị hỏng hoặc không phải bảng tính Excel",
        "The file's format is not recognised: it is damaged or not an Excel workbook",
        "hãy mở tệp bằng Excel, lưu lại dạng .xlsx rồi gửi lại; nếu Excel không mở được, hãy gửi lại tệp gốc",
        "open it in Excel, save it as .xlsx and send it again; if Excel cannot open it, send the original file again",
    ),
}


def refusal(kind: FileKind) -> Finding:
    """The plain-words finding for a file that is not an .xlsx workbook."""
    rule_id, what_vi, what_en, do_vi, do_en = REFUSALS[kind.kind]
    return Finding.make(
        rule_id,
        "error",
        value=kind.kind,
        message_vi=f"{what_vi}: {do_vi}.",
        message_en=f"{what_en}: {do_en}.",
    )


def too_large(size: int, limit_bytes: int) -> Finding:
    mb = 1024 * 1024
    return Finding.make(
        "WB_FILE_TOO_LARGE",
        "error",
        value=size,
        message_vi=(
            f"Tệp quá lớn ({size / mb:.1f} MB, tối đa {limit_bytes / mb:g} MB) nên không được đọc. "
            "Biểu mẫu báo cáo thường chỉ vài chục KB: hãy xóa các sheet, ảnh không cần thiết, lưu lại rồi gửi lại."
        ),
        message_en=(
            f"The file is too large ({size / mb:.1f} MB; the limit is {limit_bytes / mb:g} MB), so it was not read. "
            "A report form is usually a few tens of KB: delete unneeded sheets and pictures, save, and send it again."
        ),
    )
