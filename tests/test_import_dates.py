"""`import` records when old mail really arrived, and the record says who decided it and why."""

from __future__ import annotations

import json
import mailbox
from datetime import UTC, datetime
from pathlib import Path

from bot.cli.importing import arrived_at
from tests.test_cli import mail, run

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _with_headers(*lines: str, date: str | None = None) -> bytes:
    m = mail(1)
    if date:
        m["Date"] = date
    head = "".join(f"{line}\r\n" for line in lines).encode()
    return head + bytes(m)


def test_the_topmost_received_header_wins() -> None:
    raw = _with_headers(
        "Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
        "\tby mail.assoc.org.uk; Tue, 9 Sep 2026 10:15:00 +0100",
        "Received: from laptop by mx.example.org; Mon, 8 Sep 2026 23:59:00 +0000",
        date="Mon, 1 Sep 2026 08:00:00 +0000",
    )
    assert arrived_at(raw, now=NOW) == datetime(2026, 9, 9, 9, 15, tzinfo=UTC)


def test_then_the_mbox_from_line_then_the_date() -> None:
    plain = _with_headers(date="Mon, 1 Sep 2026 08:00:00 +0200")
    assert arrived_at(plain, mbox_from="ann@example.org Wed Sep 17 14:03:09 2026", now=NOW) == datetime(
        2026, 9, 17, 14, 3, 9, tzinfo=UTC)
    assert arrived_at(plain, now=NOW) == datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
    # A Received header without a date (no ";") does not count; the Date does.
    undated = _with_headers("Received: from somewhere by here", date="Mon, 1 Sep 2026 08:00:00 +0000")
    assert arrived_at(undated, now=NOW) == datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def test_never_later_than_now_and_none_when_nothing_says() -> None:
    future = _with_headers(date="Fri, 1 Jan 2100 00:00:00 +0000")
    assert arrived_at(future, now=NOW) == NOW
    assert arrived_at(_with_headers("Received: garbage; not a date"), now=NOW) is None
    assert arrived_at(bytes(mail(2)), now=NOW) is None


def test_import_keeps_arrival_dates_and_the_late_flag_follows(db_url: str, tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "old.mbox")
    early, late = mail(1), mail(2)
    early["Date"] = "Mon, 1 Sep 2026 09:30:00 +0000"
    late["Date"] = "Mon, 1 Sep 2026 09:30:00 +0000"  # written before the deadline, arrived after
    for m, from_line in ((early, "ann@example.org Tue Sep 16 10:00:00 2026"),
                         (late, "ann@example.org Sat Oct  4 18:45:00 2026")):
        msg = mailbox.mboxMessage(m)
        msg.set_from(from_line)
        box.add(msg)
    box.flush()
    box.close()
    env = {"EVIDENCE_INQUIRY_DEADLINE": "2026-09-30"}
    p = run("import", str(tmp_path / "old.mbox"), db_url=db_url, env=env)
    assert "imported 2 message(s)" in p.stdout, p.stderr
    recs = {r["reference"]: r for r in json.loads(run("list", "--json", db_url=db_url, env=env).stdout)}
    assert recs["EV-000001"]["received_at"].startswith("2026-09-16T10:00:00")
    assert recs["EV-000001"]["late"] is False
    assert recs["EV-000002"]["received_at"].startswith("2026-10-04T18:45:00")
    assert recs["EV-000002"]["late"] is True


def test_show_json_says_who_decided_when_and_why(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(bytes(mail(1)))
    assert run("import", str(tmp_path / "a.eml"), db_url=db_url).returncode == 0
    before = json.loads(run("show", "EV-000001", "--json", db_url=db_url).stdout)
    assert (before["decided_by"], before["decided_at"], before["decision_reason"]) == (None, None, None)
    assert before["submitter_slack_id"] is None
    p = run("decide", "EV-000001", "reject", "--as", "Priya Reviewer", "--reason", "Out of scope: a private contract",
            db_url=db_url)
    assert p.returncode == 0, p.stderr
    for shown in (json.loads(run("show", "EV-000001", "--json", db_url=db_url).stdout),
                  json.loads(run("list", "--json", db_url=db_url).stdout)[0],
                  json.loads(run("export", "--format", "jsonl", "--status", "rejected", db_url=db_url).stdout)):
        assert shown["decided_by"] == "Priya Reviewer"
        assert shown["decision_reason"] == "Out of scope: a private contract"
        assert datetime.fromisoformat(shown["decided_at"]).tzinfo is not None
