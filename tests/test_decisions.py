"""Decisions through the shared workflow and the `decide` command: rules, compare-and-set, audit."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake
from bot.decisions import decide, edit_fields
from bot.review import Action, ReviewError
from bot.settings import Settings
from storage import repo
from storage.db import unit_of_work
from storage.models import OutboxItem, Submission
from tests.test_cli import run
from tests.test_intake import GOOD


def _file_one(engine: Engine, settings: Settings, raw: bytes = GOOD) -> str:
    intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference
    return filed.reference


def _effects(engine: Engine) -> list[tuple[str, str | None]]:
    with unit_of_work(engine) as s:
        rows = s.execute(select(col(OutboxItem.kind), col(OutboxItem.recipient)).order_by(col(OutboxItem.id))).all()
    return [tuple(r) for r in rows]


def test_approve_records_who_and_when_and_tells_the_submitter(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    d = decide(engine, settings, reference=ref, action=Action.APPROVE, actor="slack:U1")
    assert (d.status, d.decided_by) == ("approved", "slack:U1")
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None and sub.id is not None
        trail = repo.audit_of(s, submission_id=sub.id)
    assert sub.status == "approved" and sub.decided_by == "slack:U1" and sub.decided_at is not None
    assert [(a.actor, a.action, json.loads(a.before or "{}"), json.loads(a.after or "{}")) for a in trail] == [
        ("slack:U1", "approve", {"status": "received"}, {"status": "approved"})
    ]
    assert _effects(engine)[-2:] == [("slack_update", None), ("email", "ann@example.org")]


def test_the_first_decision_wins(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    decide(engine, settings, reference=ref, action=Action.REJECT, actor="slack:U1", reason="Out of scope")
    with pytest.raises(ReviewError, match=r"already rejected by slack:U1 on"):
        decide(engine, settings, reference=ref, action=Action.APPROVE, actor="slack:U2")


def test_concurrent_decisions_one_winner(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    results: list[str] = []

    def attempt(actor: str) -> None:
        try:
            results.append(decide(engine, settings, reference=ref, action=Action.APPROVE, actor=actor).decided_by)
        except ReviewError as e:
            results.append(f"refused: {e}")

    threads = [threading.Thread(target=attempt, args=(f"slack:U{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if not r.startswith("refused")]
    assert len(winners) == 1 and len(results) == 6
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None and sub.id is not None
        assert len(repo.audit_of(s, submission_id=sub.id)) == 1
    assert [k for k, _ in _effects(engine)].count("email") == 1


def test_needs_info_then_the_answer_puts_it_back_in_review(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    decide(engine, settings, reference=ref, action=Action.NEEDS_INFO, actor="cli:Sam", reason="Which years?")
    reply = (b"From: Ann Example <ann@example.org>\r\nTo: evidence@localhost\r\n"
             b"Subject: Re: [" + ref.encode() + b"] Your evidence\r\nMessage-ID: <r-1@example.org>\r\n\r\n"
             b"From 2016 to 2021.\r\n")
    intake.store_now(engine, drafts.draft(reply, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert (filed.outcome, filed.reference) == ("follow_up", ref)
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None and sub.id is not None
        actions = [a.action for a in repo.audit_of(s, submission_id=sub.id)]
    assert sub.status == "received" and actions == ["needs_info", "info_received"]
    assert "slack_thread" in [k for k, _ in _effects(engine)]


def test_edit_fields_is_audited_with_before_and_after(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    changed = edit_fields(engine, reference=ref, actor="slack:U1",
                          changes={"supplier": "Veolia UK", "public_body": "Kent County Council"})
    assert changed == {"supplier": "Veolia UK"}  # the public body was already right
    with unit_of_work(engine) as s:
        sub = s.execute(select(Submission)).scalar_one()
        assert sub.id is not None
        (entry,) = repo.audit_of(s, submission_id=sub.id)
    assert sub.supplier == "Veolia UK"
    assert json.loads(entry.before or "") == {"supplier": "Veolia"}
    assert json.loads(entry.after or "") == {"supplier": "Veolia UK"}


def test_decide_from_the_terminal(db_url: str, engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    out = run("decide", ref, "reject", "--as", "Sam Reviewer", db_url=db_url)
    assert out.returncode == 1 and out.stderr.strip() == "evidence-bot: error: a rejection needs a reason"
    out = run("decide", ref, "reject", "--as", "Sam Reviewer", "--reason", "Not about outsourcing", db_url=db_url)
    assert out.returncode == 0 and out.stdout.strip() == f"{ref} is now rejected (by Sam Reviewer)"
    out = run("decide", ref, "approve", "--as", "Kim", db_url=db_url)
    assert out.returncode == 1 and "already rejected by cli:Sam Reviewer" in out.stderr
    trail = json.loads(run("audit", ref, "--json", db_url=db_url).stdout)
    assert [(t["actor"], t["action"], t["reason"]) for t in trail] == [
        ("cli:Sam Reviewer", "reject", "Not about outsourcing")
    ]
    assert "EV-999999" in run("decide", "EV-999999", "approve", "--as", "Kim", db_url=db_url).stderr
