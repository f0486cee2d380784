"""Block Kit for a campaign's one card: the first record's summary, the count, a few members'
own lines, and buttons that decide for every undecided member or open one of them.

Members' text is submitter text: escaped and cut here, like everything in handlers.slack.blocks.
"""

from __future__ import annotations

from typing import Any

from bot import mrkdwn
from bot.campaigns import Card
from bot.record import EvidenceRecord
from handlers.slack.blocks import FIELD_MAX, SECTION_MAX, summary_blocks

APPROVE = "campaign_approve"
REJECT = "campaign_reject"
NEEDS_INFO = "campaign_needs_info"
OPEN = "campaign_open"


def headline(size: int) -> str:
    return f"Campaign: {size} near-identical submissions"


def _member_lines(card: Card) -> str | None:
    parts = []
    for ref, lines in card.differing:
        own = "\n".join(f"> {mrkdwn.escape(line)}" for line in lines) or "> _(no lines of its own)_"
        parts.append(f"*{mrkdwn.escape(ref)}*\n{own}")
    return "\n".join(parts) if parts else None


def campaign_blocks(rec: EvidenceRecord, card: Card, **summary: Any) -> tuple[str, list[dict[str, Any]]]:
    """The first record's summary (`summary`: summary_blocks's keywords) as its campaign's card.

    The record's own buttons give way to the campaign's: they decide every undecided member.
    """
    text, blocks = summary_blocks(rec, **summary)
    blocks = [b for b in blocks if b.get("type") != "actions"]
    ref = rec.reference or "?"
    head = f":busts_in_silhouette: *{headline(card.size)}* · {card.undecided} undecided"
    blocks.insert(1, {"type": "section", "text": {"type": "mrkdwn", "text": head}})
    if (lines := _member_lines(card)) is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn.cut(
            "What the latest members changed:", FIELD_MAX)}]})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.cut(lines, SECTION_MAX)}})
    elements: list[dict[str, Any]] = []
    if card.undecided:
        n = card.undecided
        elements += [
            {"type": "button", "action_id": APPROVE, "style": "primary", "value": ref,
             "text": {"type": "plain_text", "text": f"Approve all {n}"}},
            {"type": "button", "action_id": REJECT, "style": "danger", "value": ref,
             "text": {"type": "plain_text", "text": f"Reject all {n}"}},
            {"type": "button", "action_id": NEEDS_INFO, "value": ref,
             "text": {"type": "plain_text", "text": f"Ask all {n} for information"}},
        ]
    if card.choices:
        elements.append({"type": "static_select", "action_id": OPEN,
                         "placeholder": {"type": "plain_text", "text": "Open one member"},
                         "options": [{"text": {"type": "plain_text", "text": r}, "value": r} for r in card.choices]})
    if elements:
        blocks.append({"type": "actions", "block_id": f"campaign:{ref}", "elements": elements})
    return mrkdwn.cut(f"{text} · {headline(card.size)}", 300), blocks
