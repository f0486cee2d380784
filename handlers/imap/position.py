"""Where the IMAP reader is in a mailbox: its UIDVALIDITY and the last UID whose raw copy is committed.

A message still in the folder at or below the last UID was committed before a crash (or a failed
move): it is moved without fetching it again. A changed UIDVALIDITY means the UIDs are new
(the folder was recreated or restored), so the position starts again from 0 and the folder is
re-read; the dedupe key recognises every message already stored.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage.db import unit_of_work
from storage.models import ImapState, utcnow

log = logging.getLogger(__name__)


def load(engine: Engine, mailbox: str, uidvalidity: int) -> int:
    """The last committed UID for this UIDVALIDITY (0 for a new mailbox or a changed UIDVALIDITY)."""
    for attempt in (1, 2):
        try:
            with unit_of_work(engine) as s:
                row = s.get(ImapState, mailbox)
                if row is None:
                    s.add(ImapState(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=0))
                    return 0
                if row.uidvalidity != uidvalidity:
                    log.warning("IMAP folder's UIDVALIDITY changed (%d -> %d): reading it all again; "
                                "messages already stored are recognised", row.uidvalidity, uidvalidity)
                    row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, 0, utcnow()
                    return 0
                return int(row.last_uid)
        except IntegrityError:
            if attempt == 2:  # another process inserted the row between our look-up and insert
                raise
    raise AssertionError("unreachable")


def save(engine: Engine, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    """Moves the position forward (never back: a second reader may be ahead)."""
    with unit_of_work(engine) as s:
        s.execute(
            update(ImapState)
            .where(col(ImapState.mailbox) == mailbox, col(ImapState.uidvalidity) == uidvalidity,
                   col(ImapState.last_uid) < last_uid)
            .values(last_uid=last_uid, updated_at=utcnow())
        )
