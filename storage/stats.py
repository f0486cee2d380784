"""Counting evidence for the reviewers' dashboard: grouped counts and the longest wait, in SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import Submission

GROUPABLE = ("status", "outcome", "channel")


def counts_by(session: Session, *, column: str) -> dict[str, int]:
    """Evidence records (automatic mail left out) counted by one of GROUPABLE."""
    if column not in GROUPABLE:
        raise ValueError(f"cannot group by {column}")
    field = getattr(Submission, column)
    stmt = select(field, func.count()).where(Submission.kind == "evidence").group_by(field)
    return {str(k): int(n) for k, n in session.exec(stmt).all()}


def oldest_waiting(session: Session, *, status: str = "received") -> tuple[str, str | None, datetime] | None:
    """(reference, title, received_at) of the evidence that has waited longest in `status`."""
    stmt = (
        select(Submission.reference, Submission.title, Submission.project, Submission.received_at)
        .where(Submission.kind == "evidence", Submission.status == status, col(Submission.reference).is_not(None))
        .order_by(col(Submission.received_at), col(Submission.id))
        .limit(1)
    )
    row = session.exec(stmt).first()
    if row is None:
        return None
    reference, title, project, received_at = row
    return str(reference), title or project, received_at
