"""Block Kit for the review channel: the summary of a record, before and after a decision.

Every piece of submitter text is escaped (bot.mrkdwn) and cut to Slack's limits here, in one place.
"""

from __future__ import annotations

from typing import Any

from bot import authenticity, mrkdwn
from bot.record import EvidenceRecord

SECTION_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
NAME_MAX = 300  # a submitter's name or address as shown: room for any real one
READ_ACTION = "review_read"
VERDICT = "verdict"  # the block_id of the decision's line, once there is one
BUTTONS = (("approve", "Approve", "primary"), ("reject", "Reject", "danger"),
           ("needs_info", "Request more information", None), ("edit", "Edit fields", None))


def money(value: int | None) -> str:
    if value is None:
        return "–"
    if value >= 1_000_000:
        return f"£{value / 1_000_000:,.2f}m".replace(".00m", "m")
    return f"£{value:,}"


def _field(label: str, value: str | None) -> dict[str, str]:
    return {"type": "mrkdwn", "text": mrkdwn.cut(f"*{label}*\n{mrkdwn.escape(value) or '–'}", FIELD_MAX)}


def submitter_line(rec: EvidenceRecord, slack_user_id: str | None) -> str:
    if rec.confidential:
        return "Submitter: _confidential (asked not to be named)_"
    if slack_user_id:
        return f"Submitter: <@{slack_user_id}>"  # our own mention of the verified Slack user, not user text
    # Both come from the message's From header, which has no length limit: cut each, or a long
    # display name makes the whole summary invalid_blocks and the record never reaches review.
    who = " ".join(x for x in (mrkdwn.safe(rec.submitter_name, NAME_MAX),
                               f"&lt;{mrkdwn.safe(rec.submitter_email, NAME_MAX)}&gt;"
                               if rec.submitter_email else "") if x)
    return f"Submitter: {who or 'unknown'}"


def authenticity_line(rec: EvidenceRecord) -> str | None:
    """The sender check, plainly; the domain comes from the message, so it is escaped."""
    line = authenticity.describe(rec.authenticity)
    if line is None:
        return None
    verdict = str((rec.authenticity or {}).get("verdict"))
    icon = {"verified": ":white_check_mark: ", "failed": ":warning: "}.get(verdict, "")
    return mrkdwn.cut(icon + mrkdwn.escape(line), FIELD_MAX)


def summary_blocks(
    rec: EvidenceRecord,
    *,
    slack_user_id: str | None = None,
    decided_by: str | None = None,
    decided_at: str | None = None,
    reason: str | None = None,
    corroborated_by: list[str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the review summary; buttons only while the record is open.

    `corroborated_by`: references of other records about the same public body and supplier.
    """
    ref = rec.reference or "?"
    title = rec.title or rec.project or "(no title)"
    fallback = mrkdwn.cut(f"{ref}: {mrkdwn.escape(title)}", 300)
    head = f"*{ref}* · {mrkdwn.escape(title)}"
    # "Read in full" rides on the heading, so it stays after a decision, when the review buttons go.
    read = {"type": "button", "action_id": READ_ACTION, "text": {"type": "plain_text", "text": "Read in full"},
            "value": ref}
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.cut(head, SECTION_MAX)}, "accessory": read},
        {"type": "section", "fields": [
            _field("Outcome", rec.outcome.value),
            _field("Public body", rec.public_body),
            _field("Supplier", rec.supplier),
            _field("Service area", rec.service_area),
            _field("Contract value", money(rec.contract_value_gbp)),
            _field("Savings", money(rec.savings_gbp)),
            _field("Period", rec.period),
            _field("Came by", rec.channel.value),
        ][:MAX_FIELDS]},
    ]
    if rec.summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.safe(rec.summary, SECTION_MAX)}})
    if rec.attachments:
        names = ", ".join(f"{a.filename or '(unnamed)'} ({a.size:,} bytes)" for a in rec.attachments)
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": mrkdwn.safe(f"Attachments: {names}", FIELD_MAX)}]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": submitter_line(rec, slack_user_id)}]})
    if (sender := authenticity_line(rec)) is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": sender}]})
    if corroborated_by:
        refs = ", ".join(mrkdwn.escape(r) for r in corroborated_by[:20])
        more = f" and {len(corroborated_by) - 20} more" if len(corroborated_by) > 20 else ""
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn.cut(
            f":link: Also reported in {refs}{more}", FIELD_MAX)}]})
    status = rec.status or "received"
    if status in ("received", "needs_info"):
        if status == "needs_info":
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn.safe(
                f":hourglass: More information requested: {reason or ''}", FIELD_MAX)}]})
        blocks.append({"type": "actions", "block_id": f"review:{ref}", "elements": [
            {"type": "button", "action_id": f"review_{aid}", "text": {"type": "plain_text", "text": label},
             "value": ref, **({"style": style} if style else {})}
            for aid, label, style in BUTTONS
        ]})
    else:
        verdict = {"approved": ":white_check_mark: Approved", "rejected": ":x: Rejected",
                   "withdrawn": ":leftwards_arrow_with_hook: Withdrawn"}.get(status, status)
        who = f" by {_person(decided_by)}" if decided_by else ""
        when = f" on {decided_at}" if decided_at else ""
        why = f"\nReason: {mrkdwn.escape(reason)}" if reason else ""
        blocks.append({"type": "section", "block_id": VERDICT, "text": {
            "type": "mrkdwn", "text": mrkdwn.cut(f"*{verdict}*{who}{when}{why}", SECTION_MAX)}})
    return fallback, blocks


def _person(actor: str) -> str:
    """`slack:U1` shows as a mention of U1 (our own, of a verified user ID); `cli:Sam` as Sam, escaped."""
    kind, _, name = actor.partition(":")
    if kind == "slack" and name.isalnum():
        return f"<@{name}>"
    return mrkdwn.escape(name or actor)


FALLBACK_NOTE = ":warning: Slack could not show this summary in full: *Read in full* shows the whole record."


def fallback_blocks(text: str, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plainest summary, for when Slack refuses `blocks`: the reference and title (`text`, the
    summary's fallback text, already escaped and cut) with "Read in full", the note, and what
    belongs to the decision (the buttons, or the verdict), which hold no submitter text but the
    reviewer's reason, cut."""
    read = next((b["accessory"] for b in blocks[:1] if "accessory" in b), None)
    head: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.cut(text, SECTION_MAX)}}
    if read is not None:
        head["accessory"] = read
    out = [head, {"type": "context", "elements": [{"type": "mrkdwn", "text": FALLBACK_NOTE}]}]
    return out + [b for b in blocks[1:] if b.get("type") == "actions" or b.get("block_id") == VERDICT]
