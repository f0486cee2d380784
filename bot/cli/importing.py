"""`evidence-bot import`: reading evidence that arrived before the service (.eml, folders, mbox, Maildir)."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from bot.drafts import header_block


class UnreadableMail(Exception):
    """The path cannot be read as mail."""


@dataclass(frozen=True)
class Found:
    raw: bytes
    envelope_from: str | None
    origin: str
    received_at: datetime | None = None  # when the mail really arrived, as far as it says (arrived_at)


# One header with its folded continuation lines; the block is decoded as latin-1, so never fails.
_HEADER = re.compile(r"^([A-Za-z0-9-]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(" ".join(value.split()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" (zone unknown) parses naive; RFC 5322 says it is UTC.
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _mbox_when(from_line: str | None) -> datetime | None:
    """The date of an mbox `From sender Mon Sep  1 10:00:00 2026` line (asctime, taken as UTC)."""
    if not from_line:
        return None  # (strptime's two failures cost as much as reading an .eml file)
    parts = from_line.split()
    for tail in (parts[-5:], parts[-6:-1]):  # some writers add a zone after the year
        try:
            return datetime.strptime(" ".join(tail), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def arrived_at(raw: bytes, *, mbox_from: str | None = None, now: datetime | None = None) -> datetime | None:
    """When an old message really reached its mailbox, for `import`.

    The topmost Received header (added by the last server, the one that delivered it), else the
    mbox `From ` line, else the Date the sender's client wrote; never later than now. None when
    the message says nothing usable, and the import time stands.
    """
    head = header_block(raw).decode("latin-1")
    received = date = None
    for m in _HEADER.finditer(head):
        name = m.group(1).lower()
        if name == "received" and received is None:
            # The date follows the last ";" (RFC 5321 s.4.4); what comes before is free text.
            received = m.group(2).rpartition(";")[2] if ";" in m.group(2) else None
        elif name == "date" and date is None:
            date = m.group(2)
    when = _when(received) or _mbox_when(mbox_from) or _when(date)
    if when is None:
        return None
    now = now or datetime.now(UTC)
    return min(when.astimezone(UTC), now)


def _from_header(raw: bytes) -> str | None:
    head = header_block(raw)
    for line in head.decode("latin-1").splitlines():
        if line.lower().startswith("from:"):
            addrs = [a for _, a in getaddresses([line[5:]]) if a]
            return addrs[0].lower() if addrs else None
    return None


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(5) == b"From "


def _is_maildir(path: Path) -> bool:
    return all((path / d).is_dir() for d in ("cur", "new", "tmp"))


def count(path: Path) -> int | None:
    """How many messages `messages(path)` will yield, when cheap to know (for the progress bar)."""
    if path.is_dir() and not _is_maildir(path):
        return sum(1 for p in path.rglob("*.eml") if p.is_file())
    if path.is_file() and not _is_mbox(path):
        return 1
    return None


def messages(path: Path) -> Iterator[Found]:
    if not path.exists():
        raise UnreadableMail(f"no such file or folder: {path}")
    if path.is_dir():
        if _is_maildir(path):
            md = mailbox.Maildir(path, create=False)
            for key in md.iterkeys():
                raw = md.get_bytes(key)
                yield Found(raw, _from_header(raw), f"{path}/{key}", arrived_at(raw))
            return
        files = sorted(p for p in path.rglob("*.eml") if p.is_file())
        if not files:
            raise UnreadableMail(f"no .eml files in {path}")
        for p in files:
            raw = p.read_bytes()
            yield Found(raw, _from_header(raw), str(p), arrived_at(raw))
        return
    if _is_mbox(path):
        mb = mailbox.mbox(path, create=False)
        try:
            for key in mb.iterkeys():
                msg = mb.get_message(key)
                raw = mb.get_bytes(key)
                from_line = msg.get_from()
                sender = from_line.split(" ", 1)[0] if from_line else None
                yield Found(raw, sender if sender and "@" in sender else _from_header(raw), f"{path}#{key}",
                            arrived_at(raw, mbox_from=from_line))
        finally:
            mb.close()
        return
    raw = path.read_bytes()
    if not raw.strip():
        raise UnreadableMail(f"{path} is empty")
    _check_is_mail(path, raw)
    yield Found(raw, _from_header(raw), str(path), arrived_at(raw))


# The first bytes of the compressed files an mbox or .eml is most often kept in.
_COMPRESSED = {b"\x1f\x8b": ("gzip", "gunzip"), b"BZh": ("bzip2", "bunzip2"), b"\xfd7zXZ\x00": ("xz", "unxz"),
               b"(\xb5/\xfd": ("zstd", "unzstd"), b"PK\x03\x04": ("zip", "unzip")}
# A message starts with a header field: a name of printable ASCII but ":", then ":" (RFC 5322 s.2.2).
_FIRST_HEADER = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


def _check_is_mail(path: Path, raw: bytes) -> None:
    """One file given to `import` that is neither an mbox nor a message (a gzip'd mbox, a PDF, a
    text file) is refused: stored, it became a record of binary noise with a reference."""
    for magic, (kind, tool) in _COMPRESSED.items():
        if raw.startswith(magic):
            raise UnreadableMail(f"{path} is {kind}-compressed; decompress it first (e.g. {tool}) and import that")
    if not _FIRST_HEADER.match(raw.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n")):
        raise UnreadableMail(f"{path} is not an e-mail message or mbox: it does not start with a header "
                             "such as 'From:' or 'Received:'")
