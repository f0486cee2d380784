"""The "Submit as evidence" message shortcut: the evidence form, filled in from a message.

The message's text becomes the evidence and the same field finder the e-mail door uses fills in
what it can recognise (project, public body, supplier, money, outcome); the person checks and
submits it as their own.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.parsing.fields import extract_fields
from bot.record import Outcome
from bot.runtime.services import Services
from handlers.slack import modals
from handlers.slack.actions import tell

log = logging.getLogger(__name__)

CALLBACK = "submit_as_evidence"


def prefill_from_message(text: str | None) -> dict[str, str | None]:
    """Form values (input name -> text) found in a message; blank where nothing was recognised."""
    plain = modals.plain_from_message(text).strip()
    found = extract_fields(plain)
    return {
        "project": found.project,
        "public_body": found.public_body,
        "supplier": found.supplier,
        "service_area": found.service_area,
        # Plain pounds: the form's money parser reads them back exactly.
        "contract_value": str(found.contract_value_gbp) if found.contract_value_gbp is not None else None,
        "savings": str(found.savings_gbp) if found.savings_gbp is not None else None,
        "period": found.period,
        "outcome": found.outcome.value if found.outcome is not Outcome.UNKNOWN else None,
        "confidential": "yes" if found.confidential else None,
        "declared_interests": found.declared_interests,
        "evidence": plain,
    }


def register(app: AsyncApp, services: Services) -> None:
    @app.message_shortcut(CALLBACK)
    async def submit_as_evidence(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        text = (body.get("message") or {}).get("text")
        try:
            await client.views_open(trigger_id=body["trigger_id"],
                                    view=modals.submission_modal(prefill_from_message(text)))
        except SlackApiError as e:
            log.warning("views.open from the message shortcut failed: %s", e.response.get("error"))
            await tell(client, (body.get("channel") or {}).get("id"), body["user"]["id"],
                       "Sorry, the evidence form could not be opened. Please try again.")
