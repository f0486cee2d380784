"""Withdrawal by the submitter: a WITHDRAW reply by e-mail, `/evidence withdraw` in Slack; `/evidence mine`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake
from bot.decisions import decide
from bot.review import Action, ReviewError
from bot.settings import Settings
from bot.withdraw import NOT_YOURS, WithdrawError, is_withdrawal_text, withdraw
from storage import repo
from storage.db import unit_of_work
from storage.models import Audit, FollowUp, OutboxItem, Submission
from tests.test_intake import GOOD
from tests.test_slack_flows import GOOD as FORM_GOOD
from tests.test_slack_flows import REVIEW, REVIEWER, STRANGER, SUBMITTER, Env, running, text_of, wait_until


def _file_one(engine: Engine, settings: Settings) -> str:
    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference
    return filed.reference


def _reply(engine: Engine, settings: Settings, ref: str, body: str, *, sender: str = "ann@example.org",
           n: int = 1, in_reply_to: str = "<w-1@example.org>") -> intake.Filed:
    raw = (f"From: Someone <{sender}>\r\nTo: evidence@localhost\r\nSubject: Re: [{ref}] Received: waste\r\n"
           f"Message-ID: <wd-{n}@example.org>\r\nIn-Reply-To: {in_reply_to}\r\n\r\n{body}\r\n\r\n"
           f"On Mon, 1 Jan 2024, Evidence <evidence@example.org> wrote:\r\n> Thank you for sending evidence\r\n")
    intake.store_now(engine, drafts.draft(raw.encode(), envelope_from=sender, rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    return filed


def _state(engine: Engine, ref: str) -> tuple[Submission, list[Audit], list[OutboxItem], list[FollowUp]]:
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None and sub.id is not None
        trail = repo.audit_of(s, submission_id=sub.id)
        items = list(s.execute(select(OutboxItem).order_by(col(OutboxItem.id))).scalars().all())
        fus = repo.followups_of(s, submission_id=sub.id)
    return sub, trail, items, fus


@pytest.mark.parametrize("text", ["WITHDRAW", "withdraw.", "  *Withdraw!*", "\n\nWithdraw\nthanks"])
def test_withdrawal_words(text: str) -> None:
    assert is_withdrawal_text(text)


@pytest.mark.parametrize("text", ["", "Please withdraw my evidence", "I withdraw", "Thanks\nWITHDRAW", "withdrawn"])
def test_not_withdrawal_words(text: str) -> None:
    assert not is_withdrawal_text(text)


def test_withdraw_reply_from_the_submitter(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    filed = _reply(engine, settings, ref, "WITHDRAW.")
    assert (filed.outcome, filed.reference) == ("follow_up", ref)
    sub, trail, items, fus = _state(engine, ref)
    assert sub.status == "withdrawn" and sub.decided_by == "the submitter" and sub.decided_at is not None
    assert [(a.actor, a.action, json.loads(a.before or "{}"), json.loads(a.after or "{}")) for a in trail] == [
        ("submitter:ann@example.org", "withdraw", {"status": "received"}, {"status": "withdrawn"})]
    assert len(fus) == 1  # the WITHDRAW message is kept on the record like any follow-up
    kinds = [(i.kind, i.recipient) for i in items]
    assert ("slack_update", None) in kinds and ("slack_thread", None) in kinds
    (notice,) = [i for i in items if i.kind == "email"]
    payload = json.loads(notice.payload)
    assert notice.recipient == "ann@example.org" and payload["subject"] == f"[{ref}] Your evidence: withdrawn"
    # On the thread of the message that asked.
    assert payload["in_reply_to"] == "<wd-1@example.org>" and "<wd-1@example.org>" in payload["references"]
    assert "has been withdrawn" in payload["text"] and "Dear Ann Example" in payload["text"]
    assert "has been withdrawn" in payload["html"]
    # Reviewers can no longer decide, and the first e-mail's summary update carries the new status.
    with pytest.raises(ReviewError, match="already withdrawn by the submitter"):
        decide(engine, settings, reference=ref, action=Action.APPROVE, actor="cli:Sam")


def test_withdraw_from_another_sender_is_an_ordinary_follow_up(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    assert _reply(engine, settings, ref, "WITHDRAW", sender="mallory@example.net").outcome == "follow_up"
    sub, trail, items, fus = _state(engine, ref)
    assert sub.status == "received" and trail == [] and len(fus) == 1
    assert [i.kind for i in items if i.kind in ("email", "slack_update")] == []


def test_forged_withdraw_off_the_thread_is_an_ordinary_follow_up(engine: Engine, settings: Settings) -> None:
    """The submitter's address and the reference are not secrets; the thread's Message-IDs are."""
    ref = _file_one(engine, settings)
    filed = _reply(engine, settings, ref, "WITHDRAW", in_reply_to="<guessed@example.org>")
    assert (filed.outcome, filed.reference) == ("follow_up", ref)
    sub, trail, items, fus = _state(engine, ref)
    assert sub.status == "received" and trail == [] and len(fus) == 1  # reviewers still see it
    assert [i.kind for i in items if i.kind == "email"] == []


def test_withdraw_as_a_reply_to_our_acknowledgement(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    _, _, items, _ = _state(engine, ref)
    (ack,) = [i for i in items if i.kind == "ack_email"]
    ack_id = json.loads(ack.payload)["message_id"]
    assert ack_id.startswith(f"<ack.{ref}.")
    _reply(engine, settings, ref, "WITHDRAW", in_reply_to=f"<x@example.org> {ack_id}")
    sub, trail, _, _ = _state(engine, ref)
    assert sub.status == "withdrawn" and [a.action for a in trail] == ["withdraw"]


def test_withdraw_after_approval_and_only_once(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    decide(engine, settings, reference=ref, action=Action.APPROVE, actor="cli:Sam")
    _reply(engine, settings, ref, "Withdraw", sender="ANN@example.org")  # the address in any case
    _reply(engine, settings, ref, "WITHDRAW", n=2)
    sub, trail, items, fus = _state(engine, ref)
    assert sub.status == "withdrawn" and len(fus) == 2
    assert [(a.action, json.loads(a.before or "{}")) for a in trail] == [
        ("approve", {"status": "received"}), ("withdraw", {"status": "approved"})]
    assert len([i for i in items if i.kind == "email" and "withdrawn" in json.loads(i.payload)["subject"]]) == 1


def test_withdraw_answers_a_question_without_reopening(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    decide(engine, settings, reference=ref, action=Action.NEEDS_INFO, actor="cli:Sam", reason="Which years?")
    _reply(engine, settings, ref, "WITHDRAW")
    sub, trail, _, _ = _state(engine, ref)
    assert sub.status == "withdrawn" and [a.action for a in trail] == ["needs_info", "withdraw"]


def test_withdraw_function_checks_the_submitter(engine: Engine, settings: Settings) -> None:
    ref = _file_one(engine, settings)
    for kw in ({"by_email": "bob@example.org"}, {"by_slack_user": "U1"}, {}):
        with pytest.raises(WithdrawError, match=NOT_YOURS):
            withdraw(engine, settings, reference=ref, actor="x", **kw)
    with pytest.raises(WithdrawError, match=NOT_YOURS):
        withdraw(engine, settings, reference="EV-999999", actor="x", by_email="ann@example.org")
    done = withdraw(engine, settings, reference=ref.lower(), actor="submitter:ann@example.org",
                    by_email="Ann@Example.org")
    assert (done.reference, done.previous) == (ref, "received")
    with pytest.raises(WithdrawError, match="already withdrawn"):
        withdraw(engine, settings, reference=ref, actor="x", by_email="ann@example.org")


# --------------------------------------------------------------------------- Slack


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


async def test_slack_withdraw_by_a_stranger_and_by_the_submitter(env: Env) -> None:
    reference, summary = await env.filed()
    assert await env.command(f"withdraw {reference}", user=STRANGER) == NOT_YOURS
    assert await env.command("withdraw EV-000999", user=STRANGER) == NOT_YOURS
    assert await env.command(f"withdraw {reference}", user=REVIEWER) == NOT_YOURS  # reviewers decide, not withdraw
    assert "Which record?" in await env.command("withdraw", user=SUBMITTER)
    assert env.submission(reference).status == "received" and env.audit(reference) == []

    answer = await env.command(f"withdraw {reference.lower()}", user=SUBMITTER)
    assert f"*{reference}* is withdrawn" in answer
    sub = env.submission(reference)
    assert sub.status == "withdrawn"
    assert [(a.actor, a.action) for a in env.audit(reference)] == [(f"submitter:slack:{SUBMITTER}", "withdraw")]
    after = await env.updated(summary)
    shown = text_of(after["blocks"])
    assert "Withdrawn* by the submitter" in shown
    assert not [b for b in after["blocks"] if b["type"] == "actions"]
    dms = await wait_until(lambda: [m for m in env.dms_to(SUBMITTER) if "has been withdrawn" in m["text"]],
                           what="the withdrawal DM")
    assert reference in dms[0]["text"]
    assert "already withdrawn" in await env.command(f"withdraw {reference}", user=SUBMITTER)
    assert "withdrawn" in await env.command(f"status {reference}", user=SUBMITTER)
    # The buttons an old client may still show refuse.
    await env.click("review_approve", summary)
    notes = await wait_until(lambda: env.ephemerals_to(REVIEWER), what="the refusal")
    assert "already withdrawn" in notes[0]["text"] and notes[0]["channel"] == REVIEW


async def test_slack_withdraw_notice_is_escaped(env: Env) -> None:
    reference, _ = await env.filed({**FORM_GOOD, "project": "Payroll <!channel>"})
    await env.command(f"withdraw {reference}")
    dms = await wait_until(lambda: [m for m in env.dms_to(SUBMITTER) if "withdrawn" in m["text"]],
                           what="the withdrawal DM")
    assert "&lt;!channel&gt;" in dms[0]["text"] and "<!channel>" not in dms[0]["text"]


async def test_mine_lists_only_your_own_submissions(env: Env) -> None:
    assert "not submitted any evidence" in await env.command("mine", user=SUBMITTER)
    first, _ = await env.filed()
    second, _ = await env.filed({**FORM_GOOD, "project": "Bins <@U0REV1> & <!here>"}, view_id="V2")
    other, _ = await env.filed(user=STRANGER, view_id="V3")
    await env.command(f"withdraw {first}")
    mine = await env.command("mine", user=SUBMITTER)
    lines = mine.splitlines()
    assert lines[0] == "*Your submissions* (2)"
    assert lines[1].startswith(f"• *{second}* · ") and lines[1].endswith("waiting for review")
    assert "Bins &lt;@U0REV1&gt; &amp; &lt;!here&gt;" in lines[1]
    assert lines[2] == f"• *{first}* · Payroll shared service · withdrawn"
    assert other not in mine
    theirs = await env.command("mine", user=STRANGER)
    assert other in theirs and first not in theirs and second not in theirs


def test_mine_text_says_how_many_more() -> None:
    from handlers.slack.submitter import Mine, mine_text

    rows = [Mine(f"EV-{i:06d}", None, "approved") for i in range(3)]
    text = mine_text(rows, 25)
    assert "(25)" in text and "…and 22 older" in text and "(no title) · accepted" in text
