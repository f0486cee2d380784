"""Batch filing (bot.filing) writes exactly the rows filing one message at a time writes.

The same mail is stored in two databases and parsed once; one files each message in its own
transaction with the ORM path (intake.file_parsed), the other files them all with
intake.file_batch. Every table is then compared row by row, ids included; only timestamps and
the random parts of acknowledgement Message-IDs and card-update keys are left out.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import drafts, filing, intake
from bot.settings import Settings
from storage import search
from storage.db import make_engine, unit_of_work
from storage.migrate import upgrade
from tests.conftest import CORPUS, PG_URL, make_settings
from tests.support.pgscratch import scratch_database
from tests.test_campaigns import NAMES, mail, member_text

NOW = "Tue, 01 Dec 2026 10:00:00 +0000"
ARRIVED = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)


@pytest.fixture
def twin(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second freshly migrated database of the same kind as `db_url`."""
    if db_url.startswith("sqlite"):
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "twin.db")
        yield f"sqlite:///{tmp_path}/twin.db"
        return
    assert PG_URL
    with scratch_database(Settings.model_validate({"DATABASE_URL": PG_URL}).database_url, "evidence_twin") as url:
        upgrade(url)
        yield url


def plain(i: int, sender: str, body: str, subject: str = "Evidence", more: str = "") -> bytes:
    return (f"From: Someone {i} <{sender}>\r\nTo: evidence@localhost\r\nSubject: {subject}\r\n{more}"
            f"Message-ID: <filing-{i}@example.org>\r\nDate: {NOW}\r\n\r\n{body}\r\n").encode()


def earlier_mail() -> list[bytes]:
    """Filed before the batch, one at a time: a campaign's first two records and one other."""
    return [mail(0, NAMES[0], member_text(0)), mail(1, NAMES[1], member_text(1)),
            plain(900, "dan@example.org", "Public body: Kent County Council\r\n\r\nThe bins were late.")]


def batch_mail() -> list[bytes | dict[str, Any]]:
    """Everything filing meets: the corpus (templates, HTML, attachments, automatic replies,
    follow-ups to unknown references), campaign members joining a record from before the batch
    and a campaign started inside it, follow-ups to a record from before and to one earlier in
    the batch, a withdrawal, one sender over the hourly acknowledgement limit, a text long
    enough for the files item, a Slack submission, and (set below) a parser failure and a
    forged sender."""
    corpus = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    fresh = [plain(100 + i, f"ruth.{i}@example.org", f"A campaign of our own, letter {i}.\r\n\r\n"
                   + " ".join(f"word{k} reason{k % 7}" for k in range(120))) for i in range(3)]
    members = [mail(i, NAMES[i % len(NAMES)], member_text(i)) for i in range(2, 7)]
    repeat = [plain(200 + i, "same.sender@example.org", f"Account number {i}: the payroll was late again.")
              for i in range(5)]
    long_text = plain(300, "long@example.org", "Public body: Kent County Council\r\n\r\n" + "The contract. " * 2000)
    follow_before = plain(400, "dan@example.org", "One more thing: it happened twice.", "Re: [EV-000003] Received")
    follow_in = plain(401, "ruth.0@example.org", "Please add: the letter went to the council too.",
                      "Re: [EV-000004] Received")
    withdraw = plain(402, "dan@example.org", "WITHDRAW\r\n\r\nPlease withdraw my evidence.",
                     "Re: [EV-000003] Received", "In-Reply-To: <filing-900@example.org>\r\n")
    slack = {"view_id": "V1", "user_id": "U0ANN", "user_name": "ann", "values": {
        "project": "Payroll", "public_body": "Kent County Council", "supplier": "Capita",
        "evidence": "Staff were paid late.", "outcome": "failure"}}
    return [*fresh, *members[:2], follow_in, *corpus[:12], follow_before, *repeat, slack, *members[2:],
            long_text, *corpus[12:], withdraw]


def store(engine: Engine, items: list[bytes | dict[str, Any]]) -> list[int]:
    ids = []
    for item in items:
        if isinstance(item, dict):
            d = drafts.slack_draft(**item)
        else:
            d = drafts.draft(item, envelope_from=None, rcpts=["evidence@localhost"], peer="import")
        # One arrival time in both databases: it shows in the acknowledgements' text.
        ids.append(intake.store_now(engine, dataclasses.replace(d, received_at=ARRIVED))[0])
    return ids


_RANDOM = re.compile(r"(ack\.EV-\d+\.)[0-9a-f]+@|(campaign:EV-\d+:)[0-9a-f]+")
_SKIP = {"created_at", "updated_at", "processed_at", "next_attempt_at", "at", "used_at", "decided_at", "done_at"}


def _norm(value: Any) -> Any:
    return _RANDOM.sub(lambda m: (m.group(1) or m.group(2)) + "X", value) if isinstance(value, str) else value


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    pg = engine.dialect.name == "postgresql"
    key = "submission_id" if pg else "rowid"
    fts_cols = "title, fields, body, attachments" + ("" if pg else ", reference")
    queries = {t: f"SELECT * FROM {t} ORDER BY 1, 2" for t in (
        "submission", "attachment", "followup", "outbox", "audit", "counter", "campaign_band")}
    queries["inbound"] = "SELECT id, state, error FROM inbound ORDER BY id"
    for t in search.TABLES:
        queries[t] = f"SELECT {key} AS id, {fts_cols} FROM {t} ORDER BY {key}"
    queries["window"] = "SELECT floor FROM submission_fts_window"
    out = {}
    with engine.connect() as conn:
        for name, sql in queries.items():
            rows = [dict(r._mapping) for r in conn.execute(text(sql))]
            out[name] = [{k: _norm(v) for k, v in r.items() if k not in _SKIP} for r in rows]
    for row in out["outbox"]:
        row["payload"] = json.loads(row["payload"])
    return out


def test_a_batch_files_the_same_rows_as_one_message_at_a_time(
    db_url: str, twin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small search window, so that both paths move its floor and prune it within the batch.
    monkeypatch.setattr(search, "WINDOW", 6)
    monkeypatch.setattr(search, "WINDOW_PRUNE", 3)
    # The sender check asks DNS; its answer is fixed here (one sender forged, below).
    monkeypatch.setattr(intake, "check_sender", lambda settings, job: None if job.channel == "slack" else {
        "spf": "none", "dkim": "none", "dmarc": "none", "from_domain": "example.org", "verdict": "unverified"})
    engines = [make_engine(db_url), make_engine(twin)]
    settings: list[Settings] = [make_settings(db_url), make_settings(twin)]
    try:
        for e, st in zip(engines, settings, strict=True):
            for i in store(e, list(earlier_mail())):
                assert intake.process_inbound(e, st, inbound_id=i) is not None
        stored = [store(e, batch_mail()) for e in engines]
        assert stored[0] == stored[1]
        parsed = [p for i in stored[0] if (p := intake.parse_received(engines[0], settings[0], inbound_id=i))]
        parsed[5].rec, parsed[5].error = None, "RecursionError: maximum recursion depth exceeded"
        assert parsed[7].authenticity is not None
        parsed[7].authenticity = {**parsed[7].authenticity, "verdict": "failed"}
        one_by_one = pickle.loads(pickle.dumps(parsed))
        batch = pickle.loads(pickle.dumps(parsed))

        filed_a = [f for p in one_by_one if (f := intake.file_parsed(
            engines[0], settings[0], p.inbound, p.rec, p.error, p.authenticity)) is not None]
        # file_parsed works the campaign keys out again while filing; the batch uses the parser's.
        assert all(p.campaign_keys is not None for p in batch if p.rec is not None and p.rec.kind == "evidence")
        # No falling back to one message at a time: the batch path itself must file them all.
        monkeypatch.setattr(intake, "file_parsed", None)
        runs: list[int] = []
        real_run = filing.file_run

        def counted(s: Session, st: Settings, run: list[Any], known: Any = None) -> list[intake.Filed]:
            runs.append(len(run))
            return real_run(s, st, run, known)

        monkeypatch.setattr(filing, "file_run", counted)
        filed_b = intake.file_batch(engines[1], settings[1], batch)
        follow_ups = sum(p.rec is not None and p.rec.kind == "follow_up" for p in parsed)
        assert follow_ups >= 5 and sum(runs) == len(batch) - follow_ups - 1  # and the Slack submission
        assert filed_a == filed_b
        outcomes = {f.outcome for f in filed_b}
        assert outcomes == {"evidence", "follow_up", "automatic"}
        a, b = dump(engines[0]), dump(engines[1])
        for table in a:
            assert len(a[table]) == len(b[table]), table
            for ra, rb in zip(a[table], b[table], strict=True):
                assert ra == rb, (table, {k: (ra[k], rb.get(k)) for k in ra if ra[k] != rb.get(k)})
        # What the batch had to cover is really there.
        assert any(r["campaign_size"] for r in b["submission"])
        assert {o["kind"] for o in b["outbox"]} >= {"ack_email", "slack_summary", "slack_files", "slack_update",
                                                   "slack_thread", "slack_dm"}
        assert b["window"][0]["floor"] > 0
        assert b["audit"]  # the withdrawal
    finally:
        for e in engines:
            e.dispose()


def test_a_message_filed_elsewhere_meanwhile_is_skipped_by_the_batch(engine: Engine, settings: Settings) -> None:
    ids = store(engine, [plain(i, f"s{i}@example.org", f"Account {i}.") for i in range(3)])
    parsed = [p for i in ids if (p := intake.parse_received(engine, settings, inbound_id=i))]
    assert intake.file_batch(engine, settings, parsed[1:2])[0].reference == "EV-000001"
    filed = intake.file_batch(engine, settings, parsed)
    assert [(f.inbound_id, f.reference) for f in filed] == [(ids[0], "EV-000002"), (ids[2], "EV-000003")]
    with unit_of_work(engine) as s:
        assert s.execute(text("SELECT count(*) FROM submission")).scalar_one() == 3
