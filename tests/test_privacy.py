"""Erasing one person's data (by address and by Slack user) and purging old closed records."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake, privacy
from bot.cli import privacy as privacy_cli
from bot.cli.errors import UserError
from bot.cli.main import build_parser
from bot.decisions import decide
from bot.review import Action
from bot.settings import Settings
from bot.withdraw import withdraw
from storage import repo
from storage.db import unit_of_work
from storage.models import Attachment, Audit, FollowUp, Inbound, OutboxItem, Submission
from tests.test_cli import ROOT, one_clear_line

ANN = "ann@example.org"


def _mail(sender: str, name: str, subject: str, body: str, n: int, *, attachment: bytes | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = f"{name} <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = subject
    m["Message-ID"] = f"<p-{n}@example.org>"
    m.set_content(body)
    if attachment is not None:
        m.add_attachment(attachment, maintype="text", subtype="plain", filename="report.txt")
    return bytes(m)


def _store(engine: Engine, settings: Settings, raw: bytes, sender: str) -> intake.Filed:
    intake.store_now(engine, drafts.draft(raw, envelope_from=sender, rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    return filed


def _ann_and_bob(engine: Engine, settings: Settings) -> tuple[str, str, str]:
    """Ann's two records (one with an attachment and a follow-up), and Bob's that quotes her address."""
    a1 = _store(engine, settings, _mail(
        ANN, "Ann Example", "Evidence: bins",
        "Public body: Kent County Council\nSupplier: Veolia\nOutcome: failure\n\n"
        "Bins were missed for months. Ann Example can be reached at ANN@example.org.\n", 1,
        attachment=b"Report prepared by Ann Example, ann@example.org\nThe bins were missed.\n"), ANN).reference
    a2 = _store(engine, settings, _mail(ANN, "Ann Example", "Evidence: payroll",
                                        "Supplier: Capita\n\nPayroll was late.\n", 2), ANN).reference
    assert a1 and a2
    fu = _store(engine, settings, _mail(ANN, "Ann Example", f"Re: [{a1}] Received: bins",
                                        "One more thing: write to ann@example.org, signed Ann Example.", 3), ANN)
    assert fu.outcome == "follow_up"
    b1 = _store(engine, settings, _mail(
        "bob@example.org", "Bob Other", "Evidence: roads",
        "Supplier: Amey\n\nRoads were not gritted. My neighbour ann@example.org saw it too.\n", 4),
        "bob@example.org").reference
    assert b1
    decide(engine, settings, reference=a2, action=Action.REJECT, actor="cli:Sam", reason="Out of scope")
    withdraw(engine, settings, reference=a1, actor=f"submitter:{ANN}", by_email=ANN)
    return a1, a2, b1


def _as_text(value: object) -> str:
    if isinstance(value, memoryview):
        value = bytes(value)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _everything(engine: Engine) -> str:
    """Every row of every table as text (raw messages decoded), to look for what must be gone."""
    with engine.connect() as conn:
        return "\n".join(" ".join(_as_text(v) for v in row) for table in inspect(conn).get_table_names()
                         for row in conn.execute(text(f'SELECT * FROM "{table}"')))


def _sub(engine: Engine, ref: str) -> Submission:
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None
        return sub


def _sub_gone(engine: Engine, ref: str) -> bool:
    with unit_of_work(engine) as s:
        return repo.get_submission(s, reference=ref) is None


def test_erase_by_email(engine: Engine, settings: Settings) -> None:
    a1, a2, b1 = _ann_and_bob(engine, settings)
    assert ANN in _everything(engine).lower()
    planned = privacy.erase(engine, privacy.Subject.of(email=" Ann@Example.org "), dry_run=True)
    assert ANN in _everything(engine).lower()  # a dry run changes nothing
    done = privacy.erase(engine, privacy.Subject.of(email=ANN))
    assert (len(done.records), len(done.followups)) == (3, 1)
    assert done.records == planned.records and done.outbox == planned.outbox
    assert done.line().startswith("erased from 3 record(s), 1 follow-up(s), ")

    everything = _everything(engine)
    assert ANN not in everything.lower()
    for ref in (a1, a2):
        sub = _sub(engine, ref)
        assert (sub.submitter_name, sub.submitter_email, sub.slack_user_id) == ("[erased]", None, None)
        assert "Ann Example" not in (sub.body or "") + (sub.summary or "")
    assert "[erased] can be reached at [erased]." in (_sub(engine, a1).body or "")
    bob = _sub(engine, b1)
    assert bob.submitter_email == "bob@example.org" and bob.submitter_name == "Bob Other"
    assert "My neighbour [erased] saw it too." in (bob.body or "")

    with unit_of_work(engine) as s:
        att = s.execute(select(Attachment)).scalars().one()
        assert att.text == "Report prepared by [erased], [erased]\nThe bins were missed."
        fu = s.execute(select(FollowUp)).scalars().one()
        assert (fu.sender_email, fu.sender_name) == (None, "[erased]")
        assert fu.body == "One more thing: write to [erased], signed [erased]."
        items = s.execute(select(OutboxItem).where(col(OutboxItem.kind).in_(["ack_email", "email"]))).scalars().all()
        inbound = s.execute(select(Inbound).order_by(col(Inbound.id))).scalars().all()
        audits = s.execute(select(Audit).order_by(col(Audit.id))).scalars().all()
    to_ann = [i for i in items if i.submission_id != bob.id]
    assert to_ann and all(i.status == "skipped" and i.recipient is None for i in to_ann)
    assert all(json.loads(i.payload)["to"] == "[erased]" for i in to_ann)
    assert all("Ann Example" not in i.payload for i in to_ann)
    (bob_ack,) = [i for i in items if i.submission_id == bob.id]
    assert bob_ack.status == "pending" and bob_ack.recipient == "bob@example.org"

    # Ann's messages are stubs now; Bob's keeps everything but her address.
    for row in inbound[:3]:
        assert b"ann" not in row.raw.lower() and row.raw.startswith(b"From: [erased]\r\n")
        assert row.envelope_from is None and row.size == len(row.raw)
    assert b"My neighbour [erased] saw it too." in inbound[3].raw and b"bob@example.org" in inbound[3].raw

    erasures = [a for a in audits if a.action == "erase"]
    assert sorted(a.submission_id for a in erasures) == sorted(done.records)
    digest = privacy.Subject.of(email=ANN).digest
    assert all(a.actor == "operator" and json.loads(a.after or "{}")["subject"] == digest for a in erasures)
    assert all(ANN not in f"{a.actor} {a.reason} {a.before} {a.after}".lower() for a in audits)
    withdrawal = next(a for a in audits if a.action == "withdraw")
    assert withdrawal.actor == "submitter:[erased]"

    again = privacy.erase(engine, privacy.Subject.of(email=ANN))
    assert (len(again.records), len(again.outbox), len(again.inbound)) == (0, 0, 0)


def test_erase_by_slack_user(engine: Engine, settings: Settings) -> None:
    values: dict[str, str | None] = {"project": "Payroll", "public_body": "Kent County Council",
                                     "supplier": "Capita", "evidence": "Staff were paid late.",
                                     "outcome": "failure"}
    intake.store_now(engine, drafts.slack_draft(view_id="V1", user_id="U0ANN", user_name="ann.example",
                                                values=values))
    intake.store_now(engine, drafts.slack_draft(view_id="V2", user_id="U0BOB", user_name="bob", values={
        **values, "evidence": "As <@U0ANN> said, staff were paid late; U0ANNX is someone else."}))
    filed = intake.process_pending(engine, settings)
    ann_ref, bob_ref = (f.reference for f in filed)
    assert ann_ref and bob_ref
    done = privacy.erase(engine, privacy.Subject.of(slack_user="U0ANN"))
    assert len(done.records) == 2 and len(done.inbound) == 2
    ann, bob = _sub(engine, ann_ref), _sub(engine, bob_ref)
    assert (ann.slack_user_id, ann.submitter_name) == (None, "[erased]")
    assert bob.slack_user_id == "U0BOB" and "As <@[erased]> said" in (bob.body or "")
    assert "U0ANNX is someone else" in (bob.body or "")
    with unit_of_work(engine) as s:
        dms = s.execute(select(OutboxItem).where(col(OutboxItem.kind) == "slack_dm")).scalars().all()
        raws = s.execute(select(Inbound).order_by(col(Inbound.id))).scalars().all()
    (to_ann,) = [d for d in dms if d.submission_id == ann.id]
    assert to_ann.status == "skipped" and json.loads(to_ann.payload)["user"] == "[erased]"
    assert [d.status for d in dms if d.submission_id == bob.id] == ["pending"]
    assert b"U0ANN" not in raws[0].raw and b"ann.example" not in raws[0].raw
    assert b"<@[erased]>" in raws[1].raw and b"U0BOB" in raws[1].raw


def test_bad_subjects() -> None:
    for kw in ({"email": "not-an-address"}, {"slack_user": "ann"}, {}, {"email": ANN, "slack_user": "U1"}):
        with pytest.raises(privacy.PrivacyError):
            privacy.Subject.of(**kw)


def _age(engine: Engine, ref: str, days: int) -> None:
    when = datetime.now(UTC) - timedelta(days=days)
    with unit_of_work(engine) as s:
        s.execute(update(Submission).where(col(Submission.reference) == ref).values(received_at=when, decided_at=when))


def test_purge_by_age_and_status(engine: Engine, settings: Settings) -> None:
    a1, a2, b1 = _ann_and_bob(engine, settings)  # a1 withdrawn (with a follow-up), a2 rejected, b1 received
    recent = _store(engine, settings, _mail("cy@example.org", "Cy", "Evidence: parks", "Parks.\n", 5),
                    "cy@example.org").reference
    assert recent
    decide(engine, settings, reference=recent, action=Action.REJECT, actor="cli:Sam", reason="No")
    for ref in (a1, a2, b1):
        _age(engine, ref, 400)
    statuses = privacy.parse_statuses("rejected,withdrawn")
    planned = privacy.purge(engine, older_than=privacy.parse_duration("365d"), statuses=statuses, dry_run=True)
    assert planned.records == 2 and _sub(engine, a1).id is not None
    done = privacy.purge(engine, older_than=privacy.parse_duration("1y"), statuses=statuses)
    assert (done.records, done.followups, done.attachments, done.inbound) == (2, 1, 1, 3)
    assert done.audit == 2 and done.outbox >= 4
    with unit_of_work(engine) as s:
        left = [x.reference for x in repo.list_submissions(s)]
        assert left == [b1, recent]  # old but undecided stays; recently rejected stays
        ids = {x.id for x in repo.list_submissions(s)}
        for model in (Attachment, FollowUp, Audit, OutboxItem):
            owners = set(s.execute(select(col(model.submission_id))).scalars().all())
            assert owners <= ids, model
        raw_ids = set(s.execute(select(col(Inbound.id))).scalars().all())
        assert raw_ids == {x.inbound_id for x in repo.list_submissions(s)}
    assert privacy.purge(engine, older_than=timedelta(days=365), statuses=statuses).records == 0


@pytest.mark.parametrize("bad", ["", "abc", "0d", "5h", "12", "-3d", "1.5y", "d"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(privacy.PrivacyError, match="30d, 12w, 6m or 1y"):
        privacy.parse_duration(bad)


def test_durations_and_statuses() -> None:
    assert privacy.parse_duration("30d") == timedelta(days=30)
    assert privacy.parse_duration(" 12W ") == timedelta(weeks=12)
    assert privacy.parse_duration("6m") == timedelta(days=180)
    assert privacy.parse_duration("2y") == timedelta(days=730)
    assert privacy.parse_statuses("Rejected, withdrawn,rejected") == ["rejected", "withdrawn"]
    for bad in ("received", "needs_info", "", "nonsense"):
        with pytest.raises(privacy.PrivacyError):
            privacy.parse_statuses(bad)


# --------------------------------------------------------------------------- the command line


def _cli(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "DATABASE_URL", "SLACK_"))}
    env["DATABASE_URL"] = db_url
    # No terminal: what cron, a pipe or CI gives the command.
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_refuses_without_a_terminal_or_yes(db_url: str, engine: Engine, settings: Settings) -> None:
    a1, _, _ = _ann_and_bob(engine, settings)
    out = one_clear_line(_cli("erase", "--email", ANN, db_url=db_url))
    assert "--yes" in out and "no terminal" in out
    assert _sub(engine, a1).submitter_email == ANN
    _age(engine, a1, 400)
    out = one_clear_line(_cli("purge", "--older-than", "365d", db_url=db_url))
    assert "--yes" in out
    assert _sub(engine, a1).id is not None

    p = _cli("erase", "--email", ANN, "--yes", db_url=db_url)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("erased from 3 record(s), 1 follow-up(s), ")
    p = _cli("erase", "--email", "nobody@example.org", "--yes", db_url=db_url)
    assert p.returncode == 0 and p.stdout.startswith("nothing to erase")
    p = _cli("purge", "--older-than", "365d", "--status", "withdrawn", "--yes", db_url=db_url)
    assert p.returncode == 0 and p.stdout.startswith("purged 1 record(s), 1 follow-up(s), 1 attachment(s)")


@pytest.mark.parametrize(("args", "expect"), [
    (("purge", "--older-than", "soon"), "30d, 12w, 6m or 1y"),
    (("purge", "--older-than", "0d"), "30d, 12w, 6m or 1y"),
    (("purge", "--older-than", "30d", "--status", "received"), "closed statuses only"),
    (("purge",), "--older-than"),
    (("erase",), "one of the arguments --email --slack-user is required"),
    (("erase", "--email", "a@b", "--slack-user", "U1"), "not allowed with"),
    (("erase", "--email", "nobody"), "not an e-mail address"),
    (("erase", "--slack-user", "bob"), "not a Slack user ID"),
])
def test_cli_bad_input_is_one_clear_line(args: tuple[str, ...], expect: str, db_url: str) -> None:
    assert expect in one_clear_line(_cli(*args, db_url=db_url))


def test_confirmation_on_a_terminal(engine: Engine, settings: Settings, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a1, _, _ = _ann_and_bob(engine, settings)
    asked: list[str] = []

    def say(answer: bool) -> Any:
        def ask(question: str) -> bool:
            asked.append(question)
            return answer
        return ask

    args = build_parser().parse_args(["erase", "--email", ANN])
    assert privacy_cli.run(args, engine, ask=say(False)) == 1
    assert asked == [f"Erase personal data of {ANN} from 3 record(s)?"]
    assert _sub(engine, a1).submitter_email == ANN and "nothing erased" in capsys.readouterr().out
    assert privacy_cli.run(args, engine, ask=say(True)) == 0
    assert capsys.readouterr().out.startswith("erased from 3 record(s)")
    assert _sub(engine, a1).submitter_email is None

    _age(engine, a1, 40)
    args = build_parser().parse_args(["purge", "--older-than", "30d"])
    assert privacy_cli.run(args, engine, ask=say(False)) == 1
    assert asked[-1].startswith("Delete 1 rejected/withdrawn record(s) older than 30d")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped input is no terminal: "y" does not count
    with pytest.raises(UserError, match="no terminal"):
        privacy_cli.run(args, engine)
    assert privacy_cli.run(args, engine, ask=say(True)) == 0
    assert _sub_gone(engine, a1)
