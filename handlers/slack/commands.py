"""The `/evidence` slash command: open the form, show a record's status, or explain itself.

Every answer is private (an ephemeral response). Status is shown only to the person who submitted
the record and to reviewers; anyone else gets the same answer whether or not the record exists,
so references cannot be probed.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import mrkdwn
from bot.runtime.services import Services
from handlers.slack import export, find, modals, submitter
from handlers.slack.common import Snapshot, load_async, may_review, person, reference_of

log = logging.getLogger(__name__)

COMMAND = "/evidence"
NOT_YOURS = "You can only see the status of your own submissions."
HELP = (
    "*Submitting evidence*\n"
    "• `/evidence` or `/evidence submit` opens the evidence form.\n"
    "• `/evidence status EV-000042` tells you where your submission stands.\n"
    "• `/evidence mine` lists your submissions; `/evidence withdraw EV-000042` withdraws one of them.\n"
    "• `/evidence search WORDS` searches accepted evidence and your own submissions.\n"
    "• `/evidence help` shows this message.\n"
    "• Reviewers: `/evidence stats` for the figures, `/evidence export` for the evidence pack.\n"
    "You can also choose *Submit as evidence* from a message's ⋯ menu to start the form from that message."
)
STATUS_WORDS = {
    "received": "waiting for review",
    "needs_info": "waiting for more information from the submitter",
    "approved": "accepted",
    "rejected": "not accepted",
    "withdrawn": "withdrawn",
    "filed": "filed",
}


def status_text(snap: Snapshot) -> str:
    """A record's status for a person: mrkdwn, every piece of user text escaped and cut."""
    title = mrkdwn.safe(snap.title or "(no title)", 200)
    lines = [f"*{snap.reference}* · {title}", f"Status: {STATUS_WORDS.get(snap.status, snap.status)}"]
    if snap.decided_by:
        when = f" on {snap.decided_at_text}" if snap.decided_at_text else ""
        lines.append(f"Decided by {person(snap.decided_by)}{when}")
    if snap.decision_reason:
        lines.append(f"Reason: {mrkdwn.safe(snap.decision_reason, 1500)}")
    if snap.status == "needs_info" and snap.question:
        lines.append(f"Question from the reviewers: {mrkdwn.safe(snap.question, 1500)}")
    return "\n".join(lines)


async def _open_form(client: AsyncWebClient, trigger_id: str, respond: AsyncRespond) -> None:
    try:
        await client.views_open(trigger_id=trigger_id, view=modals.submission_modal())
    except SlackApiError as e:
        # The trigger expires after 3 s; say so rather than leave the person waiting for a form.
        log.warning("views.open for the evidence form failed: %s", e.response.get("error"))
        try:
            await respond(text="Sorry, the evidence form could not be opened. Please try `/evidence` again.",
                          response_type="ephemeral")
        except Exception:
            log.warning("could not tell the user that the form did not open", exc_info=True)


async def _status(services: Services, user_id: str, arg: str) -> str:
    reference = reference_of(arg, services.settings.reference_prefix) if arg else None
    if reference is None:
        return f"Which record? Try `/evidence status {services.settings.reference_prefix}-000042`."
    snap = await load_async(services.engine, reference)
    if snap is not None and snap.slack_user_id == user_id:
        return status_text(snap)
    if await may_review(services, user_id):
        return status_text(snap) if snap is not None else f"There is no record {reference}."
    return NOT_YOURS


def register(app: AsyncApp, services: Services) -> None:
    @app.command(COMMAND)
    async def evidence(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        words = (body.get("text") or "").strip().split(None, 1)
        verb = words[0].lower() if words else ""
        rest = words[1].strip() if len(words) > 1 else ""
        user_id = body["user_id"]
        if verb in ("", "submit", "new"):
            await ack()  # first: the trigger_id and Slack's 3 s budget both start now
            await _open_form(client, body["trigger_id"], respond)
        elif verb == "status":
            await ack(text=await _status(services, user_id, rest))
        elif verb == "withdraw":
            await ack(text=await submitter.withdraw_answer(services, user_id, rest))
        elif verb == "mine":
            await ack(text=await submitter.mine_answer(services, user_id))
        elif verb == "search":
            await ack(text=await find.search_answer(services, user_id, rest))
        elif verb == "export":
            if not await may_review(services, user_id):
                await ack(text=export.NOT_REVIEWER)
                return
            await ack(text=export.STARTED)
            await export.upload_pack(services, client, user_id)
        elif verb == "stats":
            await ack(text=await find.stats_answer(services, user_id))
        elif verb in ("help", "?"):
            await ack(text=HELP)
        else:
            shown = mrkdwn.safe(verb, 40)
            await ack(text=f"I don't know `/evidence {shown}`.\n\n{HELP}")
