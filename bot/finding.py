"""Keeping a record findable: its corroboration keys and its search-index row, after every change.

Called in the same unit of work as the change (filing, a follow-up, a decision, a field edit), so
the index and the keys commit or roll back with the record itself.
"""

from __future__ import annotations

from sqlmodel import Session

from bot.corroboration import keys
from storage import repo, search


def refresh(session: Session, *, submission_id: int) -> None:
    """Recomputes the normalised body/supplier keys and rebuilds the record's search-index row."""
    session.flush()
    sub = repo.get_submission(session, submission_id=submission_id)
    if sub is None:
        search.remove(session, submission_id=submission_id)
        return
    session.refresh(sub)  # edits arrive as bulk UPDATEs, which the identity map does not see
    wanted = keys(sub.public_body, sub.supplier)
    if wanted != {"body_key": sub.body_key, "supplier_key": sub.supplier_key}:
        # Not through repo.update_submission: keys are derived, not an edit, so updated_at stays.
        for k, v in wanted.items():
            setattr(sub, k, v)
        session.add(sub)
    # The normalised names are indexed too, so "county council" finds a record that says "Kent CC".
    extra = [v for k, v in wanted.items() if v]
    # search.index_submission, less its own flush and refresh of the record just refreshed here.
    session.flush()
    if sub.kind != "evidence" or not sub.reference:
        search.remove(session, submission_id=submission_id)
        return
    search.write(session, submission_id=submission_id, doc=search.document_of(session, sub, extra))
