"""The parser's read of a stored raw copy (bot.intake._read_raw): exact, whatever its size."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from bot import drafts, intake
from bot.settings import Settings


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 3000, 3500])
def test_the_raw_copy_is_read_whole_in_pieces(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(intake, "RAW_PIECE", 1000)  # PostgreSQL reads it in pieces: several here
    raw = (b"Subject: pieces\r\n\r\n" + bytes(range(256)) * 20)[:size]
    [(inbound_id, _)] = intake.store_many(engine, [drafts.draft(raw, envelope_from="a@example.org",
                                                                rcpts=["evidence@localhost"])])
    loaded = intake.load_received(engine, settings, inbound_id=inbound_id)
    assert loaded is not None
    stored, job = loaded
    assert type(job.raw) is bytes and job.raw == raw and stored.id == inbound_id
