"""The review summary's buttons: approve at once; reject, ask for information or edit through a modal.

Each click is acknowledged first (Slack's 3 s budget), then the clicker is checked against the
reviewers on every click, never trusted from the message. The summary itself is not touched here:
a decision enqueues its chat.update in the outbox, in the same transaction, and we only wake the
outbox worker.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import mrkdwn
from bot.decisions import decide
from bot.review import Action, ReviewError
from bot.runtime.services import Services
from handlers.slack import modals, reading
from handlers.slack.common import NOT_REVIEWER, actor, already_decided, is_open, load_async, may_review

log = logging.getLogger(__name__)

_ACTOR = re.compile(r"\bslack:([UW][A-Z0-9]+)\b")


def review_error_text(error: ReviewError) -> str:
    """A refusal from the review rules, escaped, with `slack:U1` shown as a mention of U1."""
    return _ACTOR.sub(r"<@\1>", mrkdwn.escape(str(error)))


def where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(channel, ts) of the message whose button was clicked."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")
    return channel, ts


async def tell(client: AsyncWebClient, channel: str | None, user_id: str, text: str) -> None:
    """A private note to one person in the channel they clicked in; failures are logged, not raised."""
    if not channel:
        log.warning("no channel to answer %s in", user_id)  # not the text: it can name a reviewer
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user_id, text=text)
    except SlackApiError as e:
        log.warning("chat.postEphemeral to %s in %s failed: %s", user_id, channel, e.response.get("error"))


@dataclass(frozen=True)
class Click:
    user_id: str
    reference: str
    channel: str | None
    ts: str | None


async def reviewer_click(services: Services, body: dict[str, Any], client: AsyncWebClient) -> Click | None:
    """Who clicked which record's button where; None (and a private refusal) if not a reviewer."""
    channel, ts = where(body)
    click = Click(body["user"]["id"], body["actions"][0].get("value") or "", channel, ts)
    if not await may_review(services, click.user_id):
        await tell(client, channel, click.user_id, NOT_REVIEWER)
        return None
    return click


def register(app: AsyncApp, services: Services) -> None:
    @app.action("review_approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        click = await reviewer_click(services, body, client)
        if click is None:
            return
        user_id, reference, channel = click.user_id, click.reference, click.channel
        try:
            await asyncio.to_thread(decide, services.engine, services.settings, reference=reference,
                                    action=Action.APPROVE, actor=actor(user_id))
        except ReviewError as e:
            await tell(client, channel, user_id, review_error_text(e))
            return
        services.metrics.decided(str(Action.APPROVE))
        services.wake_outbox()

    def opens(builder: Callable[[str, dict[str, object], str | None, str | None], dict[str, Any]]) -> Any:
        async def listener(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            click = await reviewer_click(services, body, client)
            if click is None:
                return
            user_id, reference, channel, ts = click.user_id, click.reference, click.channel, click.ts
            snap = await load_async(services.engine, reference)
            if snap is None:
                await tell(client, channel, user_id, f"There is no record {mrkdwn.safe(reference, 40)}.")
                return
            if not is_open(snap):
                await tell(client, channel, user_id, already_decided(snap))
                return
            try:
                await client.views_open(trigger_id=body["trigger_id"],
                                        view=builder(snap.reference, snap.editable, channel, ts))
            except SlackApiError as e:
                log.warning("views.open for %s failed: %s", reference, e.response.get("error"))
                await tell(client, channel, user_id, "Sorry, the form could not be opened. Please click again.")

        return listener

    @app.action(reading.ACTION)
    async def read_in_full(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        channel, _ = where(body)
        user_id, reference = body["user"]["id"], body["actions"][0].get("value") or ""
        # The channel's members see the summary; the whole text (an insider's account, its
        # attachments) is for the people who decide.
        if not await may_review(services, user_id):
            await tell(client, channel, user_id, reading.NOT_REVIEWER_READ)
            return
        rec = await asyncio.to_thread(reading.load_record, services.engine, reference)
        if rec is None:
            await tell(client, channel, user_id, f"There is no record {mrkdwn.safe(reference, 40)}.")
            return
        view, _overflow = reading.full_text_view(rec)
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as e:
            log.warning("views.open (read in full) for %s failed: %s", reference, e.response.get("error"))
            await tell(client, channel, user_id, "Sorry, the text could not be opened. Please click again.")

    app.action("review_reject")(opens(lambda ref, _fields, ch, ts: modals.reject_modal(ref, ch, ts)))
    app.action("review_needs_info")(opens(lambda ref, _fields, ch, ts: modals.needs_info_modal(ref, ch, ts)))
    app.action("review_edit")(opens(modals.edit_modal))
