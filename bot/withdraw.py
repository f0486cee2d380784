"""Withdrawal: the submitter takes their evidence back, by e-mail ("WITHDRAW") or `/evidence withdraw`.

The submitter's say wins over the reviewers': a record can be withdrawn from any status, even
after it was approved, and a withdrawn record goes in no pack. Like a decision, a withdrawal is
one unit of work: the status (compare-and-set, so a reviewer's click at the same moment cannot be
lost or overwrite it), an audit entry, the review summary's update and the notice to the
submitter are written together or not at all.

Who may withdraw is checked here, not in the doors: by e-mail only the address the record came
from, in Slack only the user who submitted it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import acks
from bot.outbox_kinds import EMAIL, SLACK_DM, SLACK_UPDATE
from bot.record import Status
from bot.review import ReviewError
from bot.settings import Settings
from bot.templating import render
from storage import repo
from storage.db import unit_of_work
from storage.models import FollowUp, Submission
from storage.outbox import enqueue

log = logging.getLogger(__name__)

# What the summary and `/evidence status` show as "who decided": never the submitter's address
# or name, since a confidential submitter must stay unnamed in the review channel.
BY_SUBMITTER = "the submitter"
NOT_YOURS = "You can only withdraw your own submissions."
# "WITHDRAW", "withdraw.", "*Withdraw!*": the word alone on the first line, any punctuation around it.
_WITHDRAW_LINE = re.compile(r"[\W_]*withdraw[\W_]*", re.IGNORECASE)


class WithdrawError(ReviewError):
    """A withdrawal that cannot happen; the message is fit to show the person who asked."""


@dataclass(frozen=True)
class Withdrawn:
    reference: str
    previous: str  # the status before the withdrawal
    at: datetime
    audit_id: int


def is_withdrawal_text(body: str | None) -> bool:
    """True when the first non-empty line of a (cleaned) body is the word WITHDRAW."""
    for line in (body or "").splitlines():
        if line.strip():
            return bool(_WITHDRAW_LINE.fullmatch(line.strip()))
    return False


def _same_address(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().lower() == b.strip().lower())


def withdraw(
    engine: Engine,
    settings: Settings,
    *,
    reference: str,
    actor: str,
    by_email: str | None = None,
    by_slack_user: str | None = None,
) -> Withdrawn:
    """Withdraws `reference` for the submitter identified by `by_email` or `by_slack_user`.

    Raises WithdrawError when the record does not exist or is not theirs (one message for both,
    so references cannot be probed) or when it is already withdrawn.
    """
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=reference)
        if sub is None or not _is_submitter(sub, by_email=by_email, by_slack_user=by_slack_user):
            raise WithdrawError(NOT_YOURS)
        return withdraw_in(s, settings, sub, actor=actor)


def _is_submitter(sub: Submission, *, by_email: str | None, by_slack_user: str | None) -> bool:
    if sub.kind != "evidence" or sub.reference is None:
        return False
    if by_slack_user is not None:
        return bool(sub.slack_user_id) and sub.slack_user_id == by_slack_user
    if by_email is not None:
        return _same_address(sub.submitter_email, by_email)
    return False


def withdraw_in(
    s: Session, settings: Settings, sub: Submission, *, actor: str, followup: FollowUp | None = None
) -> Withdrawn:
    """The withdrawal inside the caller's transaction (intake files the WITHDRAW reply in its own).

    `followup` is the e-mail that asked, so the notice answers on that thread.
    """
    assert sub.id is not None and sub.reference is not None
    now = datetime.now(UTC)
    values: dict[str, object] = {"status": Status.WITHDRAWN, "decided_by": BY_SUBMITTER, "decided_at": now,
                                 "decision_reason": None}
    # Compare-and-set against whatever the status is now; a reviewer deciding in between changes
    # it, so read it again and retry rather than overwrite their audit-trailed decision blindly.
    for _ in range(5):
        current = s.exec(select(Submission.status).where(col(Submission.id) == sub.id)).one()
        if current == Status.WITHDRAWN:
            raise WithdrawError(f"{sub.reference} is already withdrawn.")
        if repo.set_status_if(s, submission_id=sub.id, expected=current, values=values):
            break
    else:  # pragma: no cover - five decisions racing one withdrawal
        raise WithdrawError(f"{sub.reference} changed while withdrawing it; please try again.")
    entry = repo.add_audit(s, submission_id=sub.id, actor=actor, action="withdraw",
                           before={"status": current}, after={"status": str(Status.WITHDRAWN)})
    for k, v in values.items():
        setattr(sub, k, v)
    _enqueue_effects(s, settings, sub, audit_id=entry.id or 0, followup=followup)
    return Withdrawn(sub.reference, str(current), entry.at, entry.id or 0)


def from_followup(s: Session, settings: Settings, parent: Submission, fu: FollowUp, *,
                  thread_ids: Sequence[str] = ()) -> Withdrawn | None:
    """Intake's hook: withdraws `parent` when this follow-up is the submitter's WITHDRAW.

    It must come from the submitter's address and be a reply on the record's own thread: its
    In-Reply-To or References (`thread_ids`) name the submission or a message we sent about it.
    A From line is trivially forged, and a reference is no secret (it appears in the pack); those
    Message-IDs reached only the submitter's mailbox (ours carry a random part).

    Anything else (another sender, other words, no thread, an already withdrawn record) stays an
    ordinary follow-up, which reviewers see under the summary, and returns None.
    """
    if not is_withdrawal_text(fu.body) or not _same_address(fu.sender_email, parent.submitter_email):
        return None
    if not _on_the_thread(s, parent, thread_ids):
        log.info("%s: WITHDRAW from the submitter's address but not on the record's thread; kept as a follow-up",
                 parent.reference)
        return None
    if parent.kind != "evidence" or parent.status == Status.WITHDRAWN:
        return None
    try:
        return withdraw_in(s, settings, parent, actor=f"submitter:{(fu.sender_email or '?').lower()}",
                           followup=fu)
    except WithdrawError:
        return None


def _on_the_thread(s: Session, parent: Submission, thread_ids: Sequence[str]) -> bool:
    wanted = {t.strip() for t in thread_ids if t.strip()}
    if not wanted or parent.id is None:
        return False
    if parent.message_id in wanted:
        return True
    return any(json.loads(p or "{}").get("message_id") in wanted
               for p in repo.outbox_payloads(s, submission_id=parent.id))


def _enqueue_effects(s: Session, settings: Settings, sub: Submission, *, audit_id: int,
                     followup: FollowUp | None) -> None:
    key = f"{sub.reference}:{audit_id}"
    enqueue(s, key=f"{SLACK_UPDATE}:{key}", kind=SLACK_UPDATE, payload={"reference": sub.reference},
            submission_id=sub.id)
    ctx: dict[str, Any] = {
        "reference": sub.reference, "name": sub.submitter_name, "title": sub.title or "your evidence",
        "inquiry_title": settings.inquiry_title, "address": settings.sender_address,
    }
    if sub.channel == "slack" and sub.slack_user_id and followup is None:
        enqueue(s, key=f"{SLACK_DM}:withdrawn:{key}", kind=SLACK_DM, submission_id=sub.id,
                recipient=sub.slack_user_id,
                payload={"user": sub.slack_user_id, "text": render("withdrawn_slack.txt.j2", **ctx)})
        return
    to = ((followup.sender_email if followup else None) or sub.submitter_email or "").strip().lower()
    if not to or acks.is_noreply(to):
        return
    # Answer on the thread of the message that asked (or, from Slack, of the original submission).
    parent_id = (followup.message_id if followup else None) or sub.message_id
    references = " ".join(x for x in (sub.message_id, followup.message_id if followup else None) if x)
    payload = acks.email_payload(settings, sub, to=to, subject="Your evidence: withdrawn", template="withdrawn_email",
                                 ctx=ctx, in_reply_to=parent_id, references=references)
    enqueue(s, key=f"{EMAIL}:withdrawn:{key}", kind=EMAIL, submission_id=sub.id, recipient=to, payload=payload)
