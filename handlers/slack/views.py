"""Modal submissions: new evidence, and the reviewers' reject, needs-info and edit forms.

A submission that fails validation is answered with `response_action: errors`, which keeps the
modal open with a message under the offending input; that answer must come within Slack's 3 s, so
the checks and the short database writes run before ack(), and anything slower (parsing and
filing a new submission) after it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.decisions import decide, edit_fields
from bot.drafts import slack_draft
from bot.intake import process_inbound, store_now
from bot.parsing.slack_form import validate
from bot.review import Action, ReviewError, parse_edit
from bot.runtime.services import Services
from handlers.slack import modals
from handlers.slack.common import NOT_REVIEWER, actor, may_review

log = logging.getLogger(__name__)

# Slack allows 3 s for the answer; storing must fit in it with room for the round trip.
STORE_SECONDS = 2.0
ERROR_MAX = 150  # Slack shows an input's error on one or two lines; longer ones are cut off anyway
NO_SAVE = "Sorry, this could not be saved just now. Your text is still here: please submit again in a minute."
LOST = "This form has lost track of its record; close it and click the button on the summary again."


def _error(text: str) -> str:
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def register(app: AsyncApp, services: Services) -> None:
    engine, settings = services.engine, services.settings

    @app.view(modals.SUBMIT)
    async def submit_evidence(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body["view"]
        values = modals.values_of(view)
        errors = validate(values)
        if errors:
            await ack(response_action="errors", errors={k: _error(v) for k, v in errors.items()})
            return
        user = body["user"]
        draft = slack_draft(view_id=view["id"], user_id=user["id"],
                            user_name=user.get("username") or user.get("name"), values=values)
        # Stored before we answer, so a closed modal always means a durable copy. Keyed on the view
        # id: Slack's retry of this request, or a double submit, stores nothing new.
        try:
            inbound_id, created = await asyncio.wait_for(asyncio.to_thread(store_now, engine, draft), STORE_SECONDS)
        except Exception:
            # Including a timeout: the form stays open, and submitting it again is safe (same view id).
            log.exception("storing a Slack submission from %s failed", user["id"])
            await ack(response_action="errors", errors={"evidence": NO_SAVE})
            return
        await ack()
        if created:
            services.metrics.message_received("slack")
        else:
            log.info("Slack submission %s (view %s) was already stored", inbound_id, view["id"])
        try:
            filed = await asyncio.to_thread(process_inbound, engine, settings, inbound_id=inbound_id)
        except Exception:
            # The raw copy is safe; the service's processor files it on its next pass.
            log.exception("filing Slack submission %s failed; it stays queued", inbound_id)
            return
        if filed is not None:
            services.metrics.filed(filed.outcome)
            log.info("filed Slack submission %s as %s %s", inbound_id, filed.outcome, filed.reference or "",
                     extra={"reference": filed.reference, "door": "slack"})
        services.wake_outbox()

    async def decide_from_modal(ack: AsyncAck, body: dict[str, Any], action: Action, field: str) -> None:
        view = body["view"]
        user_id = body["user"]["id"]
        reference = modals.parse_metadata(view.get("private_metadata")).get("reference")
        text = (modals.values_of(view).get(field) or "").strip()
        if not text:
            need = "Please give a reason" if action is Action.REJECT else "Please say what information is needed"
            await ack(response_action="errors", errors={field: need})
            return
        if not reference:
            await ack(response_action="errors", errors={field: LOST})
            return
        # Checked again on submit: the modal may have been opened before someone left the reviewers.
        if not await may_review(services, user_id):
            await ack(response_action="errors", errors={field: _error(NOT_REVIEWER)})
            return
        try:
            await asyncio.to_thread(decide, engine, settings, reference=reference, action=action,
                                    actor=actor(user_id), reason=text)
        except ReviewError as e:
            # Plain text under the input (not mrkdwn), e.g. "EV-000001 was already approved by …".
            await ack(response_action="errors", errors={field: _error(str(e))})
            return
        await ack()
        services.metrics.decided(str(action))
        services.wake_outbox()

    @app.view(modals.REJECT)
    async def reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await decide_from_modal(ack, body, Action.REJECT, "reason")

    @app.view(modals.NEEDS_INFO)
    async def needs_info(ack: AsyncAck, body: dict[str, Any]) -> None:
        await decide_from_modal(ack, body, Action.NEEDS_INFO, "question")

    @app.view(modals.EDIT)
    async def edit(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body["view"]
        user_id = body["user"]["id"]
        first = modals.EDIT_FIELDS[0][0]
        reference = modals.parse_metadata(view.get("private_metadata")).get("reference")
        changes, errors = parse_edit(modals.touched(view))
        if errors:
            await ack(response_action="errors", errors={k: _error(v) for k, v in errors.items()})
            return
        if not reference:
            await ack(response_action="errors", errors={first: LOST})
            return
        if not await may_review(services, user_id):
            await ack(response_action="errors", errors={first: _error(NOT_REVIEWER)})
            return
        try:
            changed = await asyncio.to_thread(edit_fields, engine, reference=reference, actor=actor(user_id),
                                              changes=changes)
        except ReviewError as e:
            await ack(response_action="errors", errors={first: _error(str(e))})
            return
        await ack()
        if changed:
            services.wake_outbox()
