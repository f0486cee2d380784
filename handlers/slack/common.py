"""What several listener kinds share: the reviewer check, loading a record, and wording decisions.

The database is synchronous, so every read here runs in a worker thread and returns detached rows:
no session is ever held across a call to Slack.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot import mrkdwn
from bot.references import format_reference, parse_reference
from bot.review import EDITABLE, UNDECIDED
from bot.runtime.services import Services
from storage import repo
from storage.db import unit_of_work
from storage.models import Submission

log = logging.getLogger(__name__)

NOT_REVIEWER = "Only the named reviewers can decide on evidence; you are not one of them."
# Slack wants an answer within 3 s; a user-group lookup that has not answered by then is a doubt,
# and doubt denies (the directory itself already denies on a failed lookup).
REVIEWER_CHECK_SECONDS = 2.0


def actor(user_id: str) -> str:
    return f"slack:{user_id}"


async def may_review(services: Services, user_id: str) -> bool:
    try:
        return await asyncio.wait_for(services.reviewers.is_reviewer(user_id), REVIEWER_CHECK_SECONDS)
    except TimeoutError:
        log.warning("reviewer check for %s timed out; denying", user_id)
        return False


@dataclass(frozen=True)
class Snapshot:
    """The fields of a record that the listeners show or check, read in one short transaction."""

    reference: str
    kind: str
    status: str
    title: str | None
    slack_user_id: str | None
    decided_by: str | None
    decided_at_text: str | None
    decision_reason: str | None
    question: str | None  # the latest "needs info" question, if any
    editable: dict[str, object]


def _snapshot(sub: Submission, question: str | None) -> Snapshot:
    return Snapshot(
        reference=sub.reference or "?",
        kind=sub.kind,
        status=sub.status,
        title=sub.title or sub.project,
        slack_user_id=sub.slack_user_id,
        decided_by=sub.decided_by,
        decided_at_text=f"{sub.decided_at:%d %b %Y at %H:%M} UTC" if sub.decided_at else None,
        decision_reason=sub.decision_reason,
        question=question,
        editable={k: getattr(sub, k) for k in EDITABLE},
    )


def load(engine: Engine, reference: str) -> Snapshot | None:
    """Blocking: run it in a thread."""
    with unit_of_work(engine, read_only=True) as s:
        sub = repo.get_submission(s, reference=reference)
        if sub is None or sub.reference is None or sub.id is None:
            return None
        question = None
        if sub.status == "needs_info":
            asked = [a for a in repo.audit_of(s, submission_id=sub.id) if a.action == "needs_info"]
            question = asked[-1].reason if asked else None
        return _snapshot(sub, question)


async def load_async(engine: Engine, reference: str) -> Snapshot | None:
    return await asyncio.to_thread(load, engine, reference)


def is_open(snap: Snapshot) -> bool:
    return snap.status in UNDECIDED


def person(actor_id: str | None) -> str:
    """`slack:U1` as a mention of U1 (an ID we verified, not user text); anything else escaped."""
    if not actor_id:
        return "someone"
    kind, _, name = actor_id.partition(":")
    if kind == "slack" and name.isalnum():
        return f"<@{name}>"
    return mrkdwn.escape(name or actor_id)


def already_decided(snap: Snapshot) -> str:
    by = f" by {person(snap.decided_by)}" if snap.decided_by else ""
    when = f" on {snap.decided_at_text}" if snap.decided_at_text else ""
    return f"{snap.reference} was already {snap.status.replace('_', ' ')}{by}{when}."


def reference_of(text: str, prefix: str) -> str | None:
    """A reference typed by a person (`EV-000042`, `ev-42`, `42`) in its canonical form."""
    number = parse_reference(text, prefix)
    return format_reference(prefix, number) if number is not None else None
