"""Extracts the text of attached documents (PDF, DOCX, plain text) within fixed limits.

Attachments come from strangers: anything may be huge, encrypted, corrupt or built to hurt
(decompression bombs, endless pages).  Every path here returns (text, warning) and never raises;
work is bounded by size, page, character and wall-clock limits.
"""

from __future__ import annotations

import codecs
import io
import time
import warnings
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.parsing.html import html_to_text

if TYPE_CHECKING:
    from docx.table import Table

# pypdf and python-docx (with lxml) are imported by the first PDF or Word file, not with the
# parser: a third of a second of every start-up (the CLI's, a parser process's) that mail
# without such attachments never needs.


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 15 * 1024 * 1024  # larger attachments are listed but not read
    max_pages: int = 200
    max_chars: int = 200_000
    time_limit_s: float = 10.0  # wall clock per attachment, checked between pages/blocks
    max_depth: int = 3  # nested message/rfc822 levels (enforced by the message parser)
    max_unzipped_bytes: int = 100 * 1024 * 1024  # DOCX: total uncompressed size of the zip


DEFAULT_LIMITS = Limits()

PDF_TYPES = ("application/pdf", "application/x-pdf")
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_TYPES = ("text/plain", "text/csv", "text/markdown", "text/x-markdown", "text/tab-separated-values")
TEXT_EXTS = (".txt", ".csv", ".md", ".tsv", ".text")
HTML_TYPES = ("text/html",)


def _ext(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return "." + filename.rsplit(".", 1)[1].strip().lower()


def extract_text(
    data: bytes,
    *,
    content_type: str,
    filename: str | None,
    limits: Limits = DEFAULT_LIMITS,
    charset: str | None = None,
) -> tuple[str | None, str | None]:
    """(text, warning) for one attachment; (None, None) for kinds that have no text (images...)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    name = filename or ctype or "attachment"
    try:
        kind = text_kind(content_type, filename, data[:8])
        if kind is None:
            return None, None
        if len(data) > limits.max_bytes:
            return None, over_limit(name, len(data), limits)
        if kind == "pdf":
            return _pdf(data, name, limits)
        if kind == "docx":
            return _docx(data, name, limits)
        text = decode_text(data, charset)
        if kind == "html":
            text = html_to_text(text)
        return _truncate(text, name, limits)
    except Exception as exc:  # noqa: BLE001 - one bad attachment must not lose the message
        return None, f"{name}: could not extract text ({type(exc).__name__})"


def text_kind(content_type: str, filename: str | None, head: bytes) -> str | None:
    """pdf, docx, text or html: how an attachment's text is read; None for kinds without text.
    `head`: the first bytes of the data (an octet-stream that starts like a PDF is one)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    ext = _ext(filename)
    if ctype in PDF_TYPES or ext == ".pdf" or (ctype == "application/octet-stream" and head[:5] == b"%PDF-"):
        return "pdf"
    if ctype == DOCX_TYPE or ext == ".docx":
        return "docx"
    if ctype in TEXT_TYPES or ext in TEXT_EXTS:
        return "text"
    if ctype in HTML_TYPES or ext in (".htm", ".html"):
        return "html"
    return None


def over_limit(name: str, size: int, limits: Limits) -> str:
    return f"{name}: {size} bytes, over the {limits.max_bytes}-byte limit; text not read"


def _truncate(
    text: str, name: str, limits: Limits, warning: str | None = None
) -> tuple[str | None, str | None]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if len(text) > limits.max_chars:
        text = text[: limits.max_chars]
        warning = warning or f"{name}: text cut at {limits.max_chars} characters"
    return (text or None), warning


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: the declared charset if it exists and fits, else UTF-8, else detection."""
    declared = _codec(charset)
    if declared:
        # Mail clients label Windows text as Latin-1 or ASCII; cp1252 is a superset of both
        # for the printable range and gives the smart quotes their real meaning.
        if declared in ("latin_1", "iso8859-1", "ascii"):
            declared = "cp1252"
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        # Detection samples the data; cap what it looks at so a huge body stays cheap.
        best = from_bytes(data[:1_000_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    except Exception:  # noqa: BLE001 - detection is a best effort
        pass
    return data.decode("cp1252", errors="replace")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"').lower()).name
    except (LookupError, ValueError):
        return None


def _pdf(data: bytes, name: str, limits: Limits) -> tuple[str | None, str | None]:
    from pypdf import PdfReader

    deadline = time.monotonic() + limits.time_limit_s
    with warnings.catch_warnings():
        # pypdf warns about sloppy but readable files; a warning is not a failure here.
        warnings.simplefilter("ignore")
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    # Many "protected" PDFs only restrict printing and open with an empty password.
                    if not reader.decrypt(""):
                        return None, f"{name}: encrypted PDF; text not extracted"
                except Exception:  # noqa: BLE001
                    return None, f"{name}: encrypted PDF; text not extracted"
            pages: list[str] = []
            total = 0
            warning: str | None = None
            n_pages = len(reader.pages)
            for i in range(n_pages):
                if i >= limits.max_pages:
                    warning = f"{name}: only the first {limits.max_pages} of {n_pages} pages read"
                    break
                if time.monotonic() > deadline:
                    warning = f"{name}: time limit reached after {i} of {n_pages} pages"
                    break
                try:
                    page_text = reader.pages[i].extract_text() or ""
                except Exception as exc:  # noqa: BLE001 - a bad page should not lose the good ones
                    warning = warning or f"{name}: page {i + 1} unreadable ({type(exc).__name__})"
                    continue
                pages.append(page_text)
                total += len(page_text)
                if total > limits.max_chars:
                    break
        except Exception as exc:  # noqa: BLE001
            return None, f"{name}: could not read PDF ({type(exc).__name__})"
    text, warning = _truncate("\n\n".join(pages), name, limits, warning)
    if text is None:
        return None, warning or f"{name}: PDF has no extractable text (scanned image?)"
    return text, warning


def _docx(data: bytes, name: str, limits: Limits) -> tuple[str | None, str | None]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    deadline = time.monotonic() + limits.time_limit_s
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unzipped = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        return None, f"{name}: not a valid DOCX ({type(exc).__name__})"
    if unzipped > limits.max_unzipped_bytes:
        return None, f"{name}: DOCX expands to {unzipped} bytes; text not extracted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            document = docx.Document(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001
            return None, f"{name}: could not read DOCX ({type(exc).__name__})"
        lines: list[str] = []
        total = 0
        warning: str | None = None
        for block in document.iter_inner_content():
            if time.monotonic() > deadline:
                warning = f"{name}: time limit reached; text incomplete"
                break
            if isinstance(block, Paragraph):
                new = [block.text]
            elif isinstance(block, Table):
                new = _docx_table(block)
            else:
                continue
            lines.extend(new)
            total += sum(len(x) + 1 for x in new)
            if total > limits.max_chars:
                break
    return _truncate("\n".join(lines), name, limits, warning)


def _docx_table(table: Table) -> list[str]:
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # Merged cells repeat in python-docx; keep each once.
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if len(cells) == 2:
            lines.append(f"{cells[0].rstrip(':').rstrip()}: {cells[1]}")
        elif cells:
            lines.append(" | ".join(cells))
    lines.append("")
    return lines
