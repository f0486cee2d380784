"""Which original attachments may be uploaded into the review channel, and why not the others.

Reviewers open what is uploaded on their own machines, so only documents and images on an
allow-list go up: never programs, macro-enabled Office files or archives (which hide anything),
and nothing over the size limit. Decided from the name, the declared type and the first bytes,
since a sender controls the first two. Pure: no Slack, no database.
"""

from __future__ import annotations

import io
import zipfile

DOCUMENT_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "application/rtf": ".rtf",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "text/markdown": ".md",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/tiff": ".tif",
}
ALLOWED_EXTENSIONS = set(DOCUMENT_TYPES.values()) | {".jpeg", ".tiff", ".text"}
MACRO_EXTENSIONS = {".docm", ".dotm", ".xlsm", ".xltm", ".xlsb", ".pptm", ".potm", ".ppsm", ".sldm", ".xlam", ".ppam"}
ARCHIVE_EXTENSIONS = {".zip", ".rar", ".7z", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".cab", ".iso", ".jar"}
PROGRAM_EXTENSIONS = {".exe", ".dll", ".com", ".bat", ".cmd", ".msi", ".scr", ".ps1", ".vbs", ".js", ".jse", ".wsf",
                      ".sh", ".app", ".apk", ".lnk", ".hta", ".cpl", ".reg", ".pif"}
_PROGRAM_MAGIC = (b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa")
_ARCHIVE_MAGIC = (b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b", b"BZh")
_OOXML = (".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp")


def _ext(filename: str | None) -> str:
    name = (filename or "").strip().lower()
    return "." + name.rsplit(".", 1)[1] if "." in name else ""


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def why_not_upload(filename: str | None, content_type: str, data: bytes, *, max_bytes: int) -> str | None:
    """None if the attachment may be uploaded; otherwise the reason, in words for the thread."""
    ext = _ext(filename)
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ext in PROGRAM_EXTENSIONS or data.startswith(_PROGRAM_MAGIC):
        return "a program or script: never uploaded"
    if ext in MACRO_EXTENSIONS or "macroenabled" in ctype:
        return "a macro-enabled Office file: never uploaded"
    is_zip = data.startswith(b"PK\x03\x04")
    if ext in ARCHIVE_EXTENSIONS or data.startswith(_ARCHIVE_MAGIC) or (is_zip and ext not in _OOXML):
        return "an archive: never uploaded"
    if is_zip and _has_macros(data):
        return "an Office file with macros inside: never uploaded"
    if ctype not in DOCUMENT_TYPES and ext not in ALLOWED_EXTENSIONS:
        return f"not a document or image type that is uploaded ({ctype or 'unknown type'})"
    if len(data) > max_bytes:
        return f"{_size(len(data))}, over the {_size(max_bytes)} upload limit"
    return None


def _has_macros(data: bytes) -> bool:
    """A .docx that is really a .docm (renamed) still carries its VBA project: look inside."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return any(n.lower().endswith(("vbaproject.bin", ".bas")) or "/macros/" in n.lower() for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return True  # unreadable as the zip it claims to be: treat as unsafe
