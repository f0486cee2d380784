"""The submitter's later word on publication: a follow-up that asks for more privacy is honoured.

Someone who wrote "name me" and then replies "please keep my name out of it" (or "not for
publication") must not find their name in the pack because the first message said otherwise.
Within one message the strictest wish already wins (bot.parsing.email_message); across the thread
it wins too, at once and without a reviewer, because more privacy is never the wrong direction.
The other way (anonymous -> named) is left to a reviewer's correction: a From line is easy to
forge, and naming someone who asked not to be named cannot be undone.

Only a follow-up from the address the record came from counts. The change is compare-and-set on
the column, so a reviewer's correction at the same moment is not overwritten blindly; it is
audited as the submitter's, and the review summary is refreshed.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from bot.outbox_kinds import SLACK_UPDATE
from bot.record import PUBLICATION
from storage import repo
from storage.models import FollowUp, Submission, utcnow
from storage.outbox import enqueue


def stricter(wish: str, than: str) -> bool:
    """True when `wish` keeps more back than `than` (named < anonymous < not_for_publication)."""
    order = {p: i for i, p in enumerate(PUBLICATION)}
    return order.get(wish, 0) > order.get(than, 0)


def from_followup(s: Session, parent: Submission, fu: FollowUp, *, publication: str) -> bool:
    """Applies a stricter publication wish read from the follow-up `fu`; True when it changed."""
    if parent.id is None or parent.kind != "evidence" or not stricter(publication, parent.publication):
        return False
    sender, owner = (fu.sender_email or "").strip().lower(), (parent.submitter_email or "").strip().lower()
    if not sender or sender != owner:
        return False
    before = parent.publication
    changed = s.execute(
        update(Submission)
        .where(col(Submission.id) == parent.id, col(Submission.publication) == before)
        .values(publication=publication, confidential=True, updated_at=utcnow())
    )
    if not getattr(changed, "rowcount", 0):
        return False  # a reviewer changed it in between: theirs stands, the follow-up shows it
    entry = repo.add_audit(s, submission_id=parent.id, actor=f"submitter:{sender}", action="publication",
                           reason="the submitter asked in a follow-up",
                           before={"publication": before}, after={"publication": publication})
    parent.publication, parent.confidential = publication, True
    enqueue(s, key=f"{SLACK_UPDATE}:{parent.reference}:publication:{entry.id}", kind=SLACK_UPDATE,
            payload={"reference": parent.reference}, submission_id=parent.id)
    return True
