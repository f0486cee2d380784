"""The campaign card's controls: one decision for every undecided member, or one member opened.

As with a record's own buttons, each click is acknowledged first and the clicker checked against
the reviewers every time. A whole-campaign decision goes through bot.decisions.decide_campaign,
which audits and notifies each member as if it had been decided alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine

from bot import campaigns, mrkdwn
from bot.decisions import decide_campaign
from bot.intake import enqueue_summary
from bot.review import MAX_REASON, Action, ReviewError
from bot.runtime.services import Services
from handlers.slack import campaign_card, modals, reading
from handlers.slack.actions import review_error_text, reviewer_click, tell, where
from handlers.slack.common import NOT_REVIEWER, actor, may_review
from storage import repo
from storage.db import unit_of_work

log = logging.getLogger(__name__)

REJECT_VIEW = "campaign_reject_all"
NEEDS_INFO_VIEW = "campaign_needs_info_all"
DONE = {Action.APPROVE: "approved", Action.REJECT: "rejected", Action.NEEDS_INFO: "asked for information"}


def undecided(engine: Engine, reference: str) -> int:
    """How many records of `reference`'s campaign are still open (blocking: run it in a thread)."""
    with unit_of_work(engine, read_only=True) as s:
        sub = repo.get_submission(s, reference=reference)
        if sub is None or sub.campaign_id is None:
            return 0
        return len(campaigns.members(s, first_id=sub.campaign_id, undecided=True))


def open_member(engine: Engine, reference: str) -> bool:
    """Queues a member's own card, in its campaign card's thread; False if it has one already."""
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=reference)
        if sub is None or not campaigns.is_member(sub) or sub.review_ts:
            return False
        enqueue_summary(s, sub)  # keyed on the reference: a second click queues nothing
        return True


def campaign_modal(action: Action, reference: str, n: int, channel: str | None, ts: str | None) -> dict[str, Any]:
    """The reject or needs-info form for a whole campaign; it says how many records it decides."""
    reject = action is Action.REJECT
    field, label = ("reason", "Reason") if reject else ("question", "What do you need to know?")
    intro = (f"Rejecting *all {n} undecided records* of the campaign of *{reference}*. Each submitter is told "
             "this reason, so write it for them." if reject else
             f"Asking the submitters of *all {n} undecided records* of the campaign of *{reference}* for more "
             "information. Each receives your question as is.")
    return {"type": "modal", "callback_id": REJECT_VIEW if reject else NEEDS_INFO_VIEW,
            "title": {"type": "plain_text", "text": "Reject campaign" if reject else "Ask campaign"},
            "submit": {"type": "plain_text", "text": f"Reject all {n}" if reject else f"Send to all {n}"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "private_metadata": modals.review_metadata(reference, channel, ts),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": intro}},
                       modals.text_input(field, label, multiline=True, optional=False, max_length=MAX_REASON)]}


def register(app: AsyncApp, services: Services) -> None:
    engine, settings = services.engine, services.settings

    async def decide_all(client: AsyncWebClient, channel: str | None, user_id: str, reference: str,
                         action: Action, reason: str | None = None) -> None:
        try:
            done = await asyncio.to_thread(decide_campaign, engine, settings, reference=reference, action=action,
                                           actor=actor(user_id), reason=reason)
        except ReviewError as e:
            await tell(client, channel, user_id, review_error_text(e))
            return
        services.metrics.decided(str(action), len(done))
        services.wake_outbox()
        await tell(client, channel, user_id, f"{len(done)} record(s) of the campaign of "
                                             f"{mrkdwn.safe(reference, 40)} {DONE[action]}.")

    @app.action(campaign_card.APPROVE)
    async def approve_all(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = await reviewer_click(services, body, client)
        if click is not None:
            await decide_all(client, click.channel, click.user_id, click.reference, Action.APPROVE)

    def opens(action: Action) -> Any:
        async def listener(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            click = await reviewer_click(services, body, client)
            if click is None:
                return
            n = await asyncio.to_thread(undecided, engine, click.reference)
            if not n:
                await tell(client, click.channel, click.user_id, "Every record of this campaign is already decided.")
                return
            try:
                await client.views_open(trigger_id=body["trigger_id"],
                                        view=campaign_modal(action, click.reference, n, click.channel, click.ts))
            except SlackApiError as e:
                log.warning("views.open for campaign %s failed: %s", click.reference, e.response.get("error"))
                await tell(client, click.channel, click.user_id,
                           "Sorry, the form could not be opened. Please click again.")

        return listener

    app.action(campaign_card.REJECT)(opens(Action.REJECT))
    app.action(campaign_card.NEEDS_INFO)(opens(Action.NEEDS_INFO))

    async def submitted(ack: AsyncAck, body: dict[str, Any], action: Action, field: str) -> None:
        view, user_id = body["view"], body["user"]["id"]
        meta = modals.parse_metadata(view.get("private_metadata"))
        text = (modals.values_of(view).get(field) or "").strip()
        if not text or not meta.get("reference"):
            await ack(response_action="errors", errors={field: "Please write it here" if meta else "Please close "
                                                        "this form and click the button on the card again"})
            return
        if not await may_review(services, user_id):
            await ack(response_action="errors", errors={field: NOT_REVIEWER})
            return
        # Answered first: deciding hundreds of records can take longer than Slack's 3 s. What the
        # rules refuse is told privately in the channel instead of under the input.
        await ack()
        await decide_all(app.client, meta.get("channel"), user_id, meta["reference"], action, text)

    @app.view(REJECT_VIEW)
    async def reject_all(ack: AsyncAck, body: dict[str, Any]) -> None:
        await submitted(ack, body, Action.REJECT, "reason")

    @app.view(NEEDS_INFO_VIEW)
    async def needs_info_all(ack: AsyncAck, body: dict[str, Any]) -> None:
        await submitted(ack, body, Action.NEEDS_INFO, "question")

    @app.action(campaign_card.OPEN)
    async def open_one(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        channel, _ = where(body)
        user_id = body["user"]["id"]
        reference = ((body["actions"][0].get("selected_option") or {}).get("value")) or ""
        if not await may_review(services, user_id):
            await tell(client, channel, user_id, reading.NOT_REVIEWER_READ)
            return
        rec = await asyncio.to_thread(reading.load_record, engine, reference)
        if rec is None:
            await tell(client, channel, user_id, f"There is no record {mrkdwn.safe(reference, 40)}.")
            return
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=reading.full_text_view(rec)[0])
        except SlackApiError as e:
            log.warning("views.open (campaign member) for %s failed: %s", reference, e.response.get("error"))
        if await asyncio.to_thread(open_member, engine, reference):
            services.wake_outbox()
            await tell(client, channel, user_id, f"{mrkdwn.safe(reference, 40)} gets a card of its own in this "
                                                 "card's thread: decide it there to decide it alone.")
