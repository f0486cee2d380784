"""Reading webhook bodies in a bounded way: never more than the limit held, whatever is sent.

Bodies are read from the stream in chunks and refused (413) as soon as they pass the message
limit plus a small allowance for the other form fields (a Content-Length over that is refused
before reading), so aiohttp's `client_max_size` (1 MiB, for `request.read()`/`post()`) never comes
into play. Fields are kept as bytes: the raw message must be stored exactly as the provider sent it.
"""

from __future__ import annotations

import asyncio
import binascii
import re
from collections.abc import AsyncIterator, Iterable
from urllib.parse import unquote_to_bytes

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

CHUNK = 64 * 1024


class Refuse(Exception):
    """An answer other than 200; `message` is for the provider's logs, with no personal data."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check_length(request: web.Request, budget: int) -> None:
    if request.content_length is not None and request.content_length > budget:
        raise Refuse(413, "the message is larger than this service accepts")


async def read_body(request: web.Request, budget: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `budget` (never buffered past it)."""
    _check_length(request, budget)
    if request.content_length is not None and not request.headers.get("Transfer-Encoding"):
        # The length is declared and within the budget: one read of exactly that (a body cut
        # short by the client is a malformed request).
        try:
            return await request.content.readexactly(request.content_length)
        except asyncio.IncompleteReadError:
            raise Refuse(400, "the body is shorter than its Content-Length") from None
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > budget:
            raise Refuse(413, "the message is larger than this service accepts")
    return bytes(body)


async def _multipart(request: web.Request, wanted: Iterable[str], budget: int) -> dict[str, bytes]:
    """The `wanted` fields of a multipart/form-data body, as bytes, streamed within `budget`.

    Bytes, not text: the raw message must be stored exactly as the provider sent it, whatever its
    charset (aiohttp's `post()` would decode every text field)."""
    _check_length(request, budget)
    names = set(wanted)
    fields: dict[str, bytes] = {}
    total = 0
    try:
        reader = MultipartReader(request.headers, request.content)
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Refuse(400, "nested multipart bodies are not expected here")
            value = bytearray()
            while chunk := await part.read_chunk(CHUNK):
                total += len(chunk)
                if total > budget:
                    raise Refuse(413, "the message is larger than this service accepts")
                if part.name in names:
                    value += chunk
            if part.name in names and part.name not in fields:
                fields[part.name] = bytes(value)
    except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:  # aiohttp's words for a broken body
        raise Refuse(400, "the multipart body is malformed") from exc
    return fields


async def _urlencoded(request: web.Request, budget: int) -> dict[str, bytes]:
    """An application/x-www-form-urlencoded body, decoded as it streams in.

    Percent-encoding can triple a message's size, so the budget applies to the decoded bytes;
    what is held at any time is the decoded fields so far and one chunk."""
    _check_length(request, 3 * budget)
    fields: dict[str, bytes] = {}
    name: str | None = None
    value = bytearray()
    total = 0
    pending = b""

    def end_pair() -> None:
        nonlocal name, value
        key = name if name is not None else bytes(value).decode("utf-8", "replace")
        if key and key not in fields:
            fields[key] = bytes(value) if name is not None else b""
        name, value = None, bytearray()

    async def chunks() -> AsyncIterator[bytes]:
        async for c in request.content.iter_chunked(CHUNK):
            yield c
        yield b"&"  # the last pair ends with the body

    async for chunk in chunks():
        data = pending + chunk
        # A %XX escape cut by the chunk boundary ("%" or "%4" at the end) waits for the next chunk.
        cut = data.rfind(b"%", max(0, len(data) - 2))
        pending, data = (data[cut:], data[:cut]) if cut >= 0 else (b"", data)
        for piece in re.split(rb"([&=])", data):
            if piece == b"&":
                end_pair()
            elif piece == b"=" and name is None:
                name, value = bytes(value).decode("utf-8", "replace"), bytearray()
            elif piece:
                decoded = _unquote(piece.replace(b"+", b" "))
                total += len(decoded)
                if total > budget:
                    raise Refuse(413, "the message is larger than this service accepts")
                value += decoded
    return fields


_ODD = re.compile(rb"%(?![0-9A-Fa-f]{2})|[\r\n=]")


def _unquote(piece: bytes) -> bytes:
    """Percent-decoding in C: a %XX is quoted-printable's =XX (the piece holds no "=" of its own).

    urllib's unquote_to_bytes splits on every "%": 64 KiB of escapes cost it 4.8 MB at peak."""
    if _ODD.search(piece):  # a stray "%", or what quoted-printable would read otherwise: urllib's way
        return unquote_to_bytes(piece)
    return binascii.a2b_qp(piece.replace(b"%", b"="))


async def form(request: web.Request, wanted: Iterable[str], budget: int, *,
                urlencoded: bool) -> dict[str, bytes]:
    if request.content_type == "multipart/form-data":
        return await _multipart(request, wanted, budget)
    if urlencoded and request.content_type == "application/x-www-form-urlencoded":
        return await _urlencoded(request, budget)
    kinds = "multipart/form-data or application/x-www-form-urlencoded" if urlencoded else "multipart/form-data"
    raise Refuse(415, f"expected {kinds}")
