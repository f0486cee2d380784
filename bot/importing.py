"""Reading evidence that arrived before the service: .eml files, folders, mbox files, Maildirs."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path

from bot.intake import header_block


class UnreadableMail(Exception):
    """The path cannot be read as mail."""


@dataclass(frozen=True)
class Found:
    raw: bytes
    envelope_from: str | None
    origin: str


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
                yield Found(raw, _from_header(raw), f"{path}/{key}")
            return
        files = sorted(p for p in path.rglob("*.eml") if p.is_file())
        if not files:
            raise UnreadableMail(f"no .eml files in {path}")
        for p in files:
            raw = p.read_bytes()
            yield Found(raw, _from_header(raw), str(p))
        return
    if _is_mbox(path):
        mb = mailbox.mbox(path, create=False)
        try:
            for key in mb.iterkeys():
                msg = mb.get_message(key)
                raw = mb.get_bytes(key)
                sender = msg.get_from().split(" ", 1)[0] if msg.get_from() else None
                yield Found(raw, sender if sender and "@" in sender else _from_header(raw), f"{path}#{key}")
        finally:
            mb.close()
        return
    raw = path.read_bytes()
    if not raw.strip():
        raise UnreadableMail(f"{path} is empty")
    yield Found(raw, _from_header(raw), str(path))
