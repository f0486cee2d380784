""""Read in full": the whole evidence and every attachment's text in a modal, for reviewers.

Builders only (no bolt): the outbox uses them too; the listener is in handlers.slack.actions.
A modal holds at most 100 blocks of at most 3,000 characters; long evidence is split into
sections at paragraph breaks. What does not fit is in the summary's thread, where the outbox
uploads the whole text as a file next to the original attachments (bot.runtime.slack_outbox), and the
modal's last block says so. `full_text_view` decides both, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from bot import mrkdwn
from bot.convert import record_from_submission
from bot.record import EvidenceRecord
from handlers.slack.blocks import READ_ACTION, SECTION_MAX, money
from storage import repo
from storage.db import unit_of_work

ACTION = READ_ACTION
MAX_BLOCKS = 100
# Slack also caps a view's whole payload; 120,000 characters of text keeps well inside it.
MAX_TEXT = 120_000
NOT_REVIEWER_READ = "Only the named reviewers can read submissions in full."


def overflow_filename(reference: str) -> str:
    return f"{reference}-full-text.txt"


def _sections(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}}
            for piece in mrkdwn.split(text, SECTION_MAX)]


def _heading(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": mrkdwn.cut(text, 150)}}


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def content_blocks(rec: EvidenceRecord) -> list[dict[str, Any]]:
    """Everything a reviewer reads, in order: key facts, the evidence text, each attachment."""
    facts = (f"*Outcome:* {rec.outcome.value} · *Public body:* {mrkdwn.escape(rec.public_body) or '–'} · "
             f"*Supplier:* {mrkdwn.escape(rec.supplier) or '–'} · *Contract value:* {money(rec.contract_value_gbp)}"
             f" · *Savings:* {money(rec.savings_gbp)}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.cut(
            f"*{rec.reference}* · {mrkdwn.escape(rec.title or rec.project or '(no title)')}", SECTION_MAX)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn.cut(facts, SECTION_MAX)}]},
        _heading("Evidence"),
        *(_sections(rec.body or "") or [{"type": "section", "text": {"type": "mrkdwn", "text": "_(no text)_"}}]),
    ]
    for i, a in enumerate(rec.attachments, 1):
        name = a.filename or "(unnamed)"
        blocks.append(_heading(f"Attachment {i}: {name}"))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn.cut(
            f"{mrkdwn.escape(a.content_type)} · {_size(a.size)}", SECTION_MAX)}]})
        blocks.extend(_sections(a.text or "") or [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "_No text could be read from this file._"}]}])
    return blocks


def _chars(block: dict[str, Any]) -> int:
    text = block.get("text") or {}
    return len(text.get("text", "")) + sum(len(e.get("text", "")) for e in block.get("elements", []))


def full_text_view(rec: EvidenceRecord) -> tuple[dict[str, Any], bool]:
    """(the modal, whether some of the text did not fit and is in the thread instead)."""
    blocks = content_blocks(rec)
    room, used = MAX_BLOCKS - 1, 0  # one block kept back for the "continues" note
    kept: list[dict[str, Any]] = []
    for b in blocks:
        if len(kept) >= room or used + _chars(b) > MAX_TEXT:
            break
        kept.append(b)
        used += _chars(b)
    overflow = len(kept) < len(blocks)
    if overflow:
        kept.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f":page_facing_up: The rest does not fit here. The whole text is in the summary's thread in the "
            f"review channel, as *{overflow_filename(rec.reference or 'record')}*.")}})
    view = {"type": "modal", "callback_id": "read_in_full",
            "title": {"type": "plain_text", "text": mrkdwn.cut(f"Read {rec.reference or 'record'}", 24)},
            "close": {"type": "plain_text", "text": "Close"}, "blocks": kept}
    return view, overflow


def full_text_document(rec: EvidenceRecord) -> str:
    """The same content as plain text, for the file in the thread when the modal cannot hold it."""
    title = rec.title or rec.project or "(no title)"
    parts = [f"{rec.reference}: {title}", "", "EVIDENCE", "", rec.body or "(no text)"]
    for i, a in enumerate(rec.attachments, 1):
        parts += ["", f"ATTACHMENT {i}: {a.filename or '(unnamed)'} ({a.content_type}, {_size(a.size)})", "",
                  a.text or "(no text could be read from this file)"]
    return "\n".join(parts) + "\n"


def load_record(engine: Engine, reference: str) -> EvidenceRecord | None:
    with unit_of_work(engine, read_only=True) as s:
        sub = repo.get_submission(s, reference=reference)
        if sub is None or sub.id is None:
            return None
        return record_from_submission(sub, repo.attachments_of(s, submission_ids=[sub.id])[sub.id])
