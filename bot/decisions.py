"""Review decisions and field corrections as one unit of work: status, audit trail and side effects.

Slack's buttons and the `decide` command both come here, so the same rules, the same audit and the
same notifications apply whoever decides and however they reach us.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import acks, campaigns, finding
from bot.outbox_kinds import EMAIL, SLACK_DM, SLACK_UPDATE
from bot.review import EDITABLE, RESULT, Action, ReviewError, check_decision
from bot.settings import Settings
from bot.templating import render
from storage import repo
from storage.db import unit_of_work
from storage.models import Submission
from storage.outbox import enqueue


@dataclass(frozen=True)
class Decided:
    reference: str
    status: str
    decided_by: str
    decided_at: datetime
    reason: str | None


def _load(s: Session, reference: str) -> Submission:
    sub = repo.get_submission(s, reference=reference)
    if sub is None or sub.id is None:
        raise ReviewError(f"no record with reference {reference}")
    return sub


def _already(sub: Submission) -> ReviewError:
    when = f" on {sub.decided_at:%d %b %Y at %H:%M} UTC" if sub.decided_at else ""
    by = f" by {sub.decided_by}" if sub.decided_by else ""
    return ReviewError(f"{sub.reference} was already {sub.status.replace('_', ' ')}{by}{when}")


def decide(
    engine: Engine, settings: Settings, *, reference: str, action: Action, actor: str, reason: str | None = None
) -> Decided:
    """Applies a decision if the record is still open to it (compare-and-set: the first one wins)."""
    with unit_of_work(engine) as s:
        sub = _load(s, reference)
        decided = _apply(s, settings, sub, action=action, actor=actor, reason=reason)
        if decided is None:
            s.rollback()
            raise _already(_load(s, reference))
        if sub.campaign_id is not None:  # the campaign card counts what is still undecided
            campaigns.enqueue_card_update(s, first_id=sub.campaign_id)
        return decided


def decide_campaign(
    engine: Engine, settings: Settings, *, reference: str, action: Action, actor: str, reason: str | None = None
) -> list[Decided]:
    """The same decision for every undecided record of `reference`'s campaign, each audited and
    notified exactly as `decide` does for one record, in one transaction."""
    with unit_of_work(engine) as s:
        sub = _load(s, reference)
        first_id = sub.campaign_id
        if first_id is None:
            raise ReviewError(f"{sub.reference} is not part of a campaign")
        done = []
        for member in campaigns.members(s, first_id=first_id, undecided=True):
            decided = _apply(s, settings, member, action=action, actor=actor, reason=reason)
            if decided is not None:  # None: someone decided this one a moment ago; theirs stands
                done.append(decided)
        if not done:
            raise ReviewError(f"every record of the campaign of {sub.reference} is already decided")
        campaigns.enqueue_card_update(s, first_id=first_id)
        return done


def _apply(s: Session, settings: Settings, sub: Submission, *, action: Action, actor: str,
           reason: str | None) -> Decided | None:
    """One record's decision, audit entry and notices; None when another decision got there first."""
    assert sub.id is not None and sub.reference is not None
    if sub.status not in ("received", "needs_info"):
        raise _already(sub)
    previous = sub.status  # the CAS below also refreshes `sub` in the session
    text = check_decision(status=previous, kind=sub.kind, action=action, reason=reason)
    status = str(RESULT[action])
    values: dict[str, object] = {"status": status}
    if action is not Action.NEEDS_INFO:
        values |= {"decided_by": actor, "decided_at": datetime.now(UTC), "decision_reason": text}
    if not repo.set_status_if(s, submission_id=sub.id, expected=previous, values=values):
        return None
    entry = repo.add_audit(s, submission_id=sub.id, actor=actor, action=str(action), reason=text,
                           before={"status": previous}, after={"status": status})
    for k, v in values.items():
        setattr(sub, k, v)
    finding.refresh(s, submission_id=sub.id)  # status is read live; keys and text stay in step
    _enqueue_effects(s, settings, sub, audit_id=entry.id or 0, action=action, reason=text)
    return Decided(sub.reference, status, actor, entry.at, text)


def edit_fields(engine: Engine, *, reference: str, actor: str, changes: dict[str, object]) -> dict[str, object]:
    """Corrects parsed fields; returns what actually changed. Audited with before and after."""
    with unit_of_work(engine) as s:
        sub = _load(s, reference)
        assert sub.id is not None
        before = {k: getattr(sub, k) for k in changes if k in EDITABLE}
        after = {k: v for k, v in changes.items() if k in EDITABLE and before.get(k) != v}
        if not after:
            return {}
        repo.update_submission(s, submission_id=sub.id, values=after)
        finding.refresh(s, submission_id=sub.id)  # re-index the corrected text, re-key body/supplier
        entry = repo.add_audit(s, submission_id=sub.id, actor=actor, action="edit",
                               before={k: before[k] for k in after}, after=after)
        enqueue(s, key=f"{SLACK_UPDATE}:{sub.reference}:{entry.id}", kind=SLACK_UPDATE,
                payload={"reference": sub.reference}, submission_id=sub.id)
        return after


def _enqueue_effects(s: Session, settings: Settings, sub: Submission, *, audit_id: int, action: Action,
                     reason: str | None) -> None:
    key = f"{sub.reference}:{audit_id}"
    enqueue(s, key=f"{SLACK_UPDATE}:{key}", kind=SLACK_UPDATE, payload={"reference": sub.reference},
            submission_id=sub.id)
    ctx: dict[str, Any] = {
        "reference": sub.reference, "name": sub.submitter_name, "title": sub.title or "your evidence",
        "action": str(action), "reason": reason, "inquiry_title": settings.inquiry_title,
        "address": settings.sender_address,
    }
    if sub.channel == "slack" and sub.slack_user_id:
        enqueue(s, key=f"{SLACK_DM}:{key}", kind=SLACK_DM, submission_id=sub.id, recipient=sub.slack_user_id,
                payload={"user": sub.slack_user_id, "text": render("decision_slack.txt.j2", **ctx)})
        return
    to = (sub.submitter_email or "").lower()
    if not to or acks.is_noreply(to):
        return
    subject = {"approve": "accepted", "reject": "not accepted", "needs_info": "more information needed"}[action]
    enqueue(s, key=f"{EMAIL}:{key}", kind=EMAIL, submission_id=sub.id, recipient=to, payload=acks.email_payload(
        settings, sub, to=to, subject=f"Your evidence: {subject}", template="decision_email", ctx=ctx,
        in_reply_to=sub.message_id, references=sub.message_id or ""))
