"""Big attachments without big memory: take them out of a message before the e-mail parser sees it.

Python's e-mail parser holds a message several times over: the bytes decoded to one string, a
list of its lines, each part's payload joined again, and `get_payload(decode=True)` makes two more
copies (ASCII bytes, then the decoded data). For a 20 MB scan that is well over 100 MB.

So, for a big message only, this module walks the MIME tree on the raw bytes (headers parsed by
the standard library, a part's body found by its boundary lines, exactly as the feed parser
finds them) and replaces every large base64 body by nothing, adding a header that names a `Stub`.
The stub holds what the parser needs of the body, worked out in one streaming pass over the raw
bytes: its decoded size, its SHA-256 and its first bytes (for sniffing a PDF). The decoded data
itself is only made, once, if the attachment's text is to be read (bot.parsing.attachments).
The parser then reads a small message; nothing else changes.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

# Messages below this size are parsed as they are (most mail), as are bodies below STUB_BYTES.
LEAN_FROM_BYTES = 2 * 1024 * 1024
STUB_BYTES = 256 * 1024
STUB_HEADER = "X-Evidence-Bot-Stub"
_CHUNK_LINES = 1 << 12  # base64 is decoded this many lines at a time (about 320 KB)
_MAX_DEPTH = 20

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_B64 = bytes(c for c in range(256) if c not in _B64)  # deleted with bytes.translate: one copy


@dataclass
class Stub:
    """A body taken out of the message: what the parser needs of it, and where it lies in raw."""

    raw: memoryview  # the base64 text of the body, in the original message (no copy)
    size: int = 0
    sha256: str = ""
    head: bytes = b""  # the first decoded bytes (a PDF is sniffed by them)
    bad_base64: bool = False

    def data(self) -> bytes:
        """The decoded body, made now (one copy of the attachment's size)."""
        out = bytearray()
        for chunk in _decoded_chunks(self.raw):
            out += chunk
        return bytes(out)


def _decoded_chunks(body: memoryview) -> Iterator[bytes]:
    """The base64 body decoded a chunk at a time. Only well-formed base64 (characters outside the
    alphabet aside, which the standard library skips too) is decoded here; anything else raises
    binascii.Error, and the part is then left for the parser, whose lenient decoder notes it."""
    carry = b""
    pos, n = 0, len(body)
    while pos < n:
        end = min(n, pos + 78 * _CHUNK_LINES)
        piece = carry + bytes(body[pos:end]).translate(None, _NOT_B64)
        pos = end
        cut = len(piece) - len(piece) % 4 if pos < n else len(piece)
        carry, piece = piece[cut:], piece[:cut]
        if not piece:
            continue
        if b"=" in piece[:-2] or (pos < n and b"=" in piece):
            raise binascii.Error("padding before the end")
        yield binascii.a2b_base64(piece, strict_mode=False)


def _stub_of(body: memoryview) -> Stub:
    stub = Stub(body)
    h = hashlib.sha256()
    try:
        for chunk in _decoded_chunks(body):
            if len(stub.head) < 16:
                stub.head += chunk[: 16 - len(stub.head)]
            stub.size += len(chunk)
            h.update(chunk)
    except Exception:  # noqa: BLE001 - undecodable: the parser reads this part itself
        stub.bad_base64 = True
    stub.sha256 = h.hexdigest()
    return stub


@dataclass
class Lean:
    """The message with its big bodies out (`raw`), and the stubs by number."""

    raw: bytes
    stubs: dict[str, Stub]


def lean(raw: bytes) -> Lean | None:
    """The message without its big base64 bodies, or None when there is nothing to take out
    (a small message, no big base64 part, or a structure this walk does not follow)."""
    if len(raw) < LEAN_FROM_BYTES:
        return None
    view = memoryview(raw)
    cuts: list[tuple[int, int, int]] = []  # (header end, body start, body end) of each stubbed part
    try:
        _walk(view, 0, len(raw), cuts, depth=0)
    except _Unfollowed:
        return None
    if not cuts:
        return None
    stubs: dict[str, Stub] = {}
    pieces: list[bytes] = []
    pos = 0
    for k, (head_end, body_start, body_end) in enumerate(cuts):
        stub = _stub_of(view[body_start:body_end])
        if stub.bad_base64:
            continue  # left in: the parser notes the bad base64 as it always does
        name = str(k)
        stubs[name] = stub
        eol = b"\r\n" if raw[head_end : head_end + 2] == b"\r\n" else b"\n"
        pieces.append(raw[pos:head_end])
        pieces.append(eol + f"{STUB_HEADER}: {name}".encode() + raw[head_end:body_start])
        pos = body_end
    if not stubs:
        return None
    pieces.append(raw[pos:])
    return Lean(b"".join(pieces), stubs)


class _Unfollowed(Exception):
    """A structure the walk does not follow: the message is parsed as it is."""


def _head_end(view: memoryview, start: int, end: int) -> tuple[int, int]:
    """(end of the header lines, start of the body) of the entity at [start, end)."""
    if bytes(view[start : start + 2]) in (b"\r\n",) or bytes(view[start : start + 1]) == b"\n":
        return start, start + (2 if bytes(view[start : start + 2]) == b"\r\n" else 1)  # no headers
    m = _HEAD_END.search(view, start, end)
    if m is None:
        raise _Unfollowed
    return m.start(), m.end()


def _walk(view: memoryview, start: int, end: int, cuts: list[tuple[int, int, int]], *, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Unfollowed
    head_end, body_start = _head_end(view, start, end)
    headers: Message = BytesHeaderParser(policy=policy.compat32).parsebytes(bytes(view[start:head_end]) + b"\n\n")
    if headers.defects:
        raise _Unfollowed
    ctype = headers.get_content_type()
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_boundary()
        if not boundary:
            raise _Unfollowed
        for part_start, part_end in _parts(view, body_start, end, boundary):
            _walk(view, part_start, part_end, cuts, depth=depth + 1)
        return
    if ctype.startswith("message/") or ctype.startswith("text/"):
        return  # attached messages and text are read by the parser as they are
    cte = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
    if depth > 0 and cte == "base64" and end - body_start >= STUB_BYTES:
        cuts.append((head_end, body_start, end))


def _parts(view: memoryview, start: int, end: int, boundary: str) -> list[tuple[int, int]]:
    """The [start, end) of each part between "--boundary" lines, as email.feedparser splits them:
    the line break before a delimiter line belongs to the delimiter."""
    delim = re.compile(
        rb"(?:^|(?<=\n))--" + re.escape(boundary.encode("latin-1", "replace")) + rb"(--)?[ \t]*(?:\r\n|\r|\n|$)",
        re.MULTILINE,
    )
    parts: list[tuple[int, int]] = []
    cur: int | None = None
    for m in delim.finditer(view, start, end):
        if cur is not None:
            stop = m.start()
            if bytes(view[stop - 2 : stop]) == b"\r\n":
                stop -= 2
            elif bytes(view[stop - 1 : stop]) in (b"\n", b"\r"):
                stop -= 1
            parts.append((cur, stop))
        if m.group(1):  # the closing delimiter
            return parts
        cur = m.end()
    raise _Unfollowed  # no closing delimiter: a truncated message, parsed as it is
