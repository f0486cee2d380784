"""The app-level error handler: what a person sees when a listener fails unexpectedly.

A listener that raises (the database is down, a table is missing, a bug) would otherwise leave
Slack's generic "dispatch_failed", a modal that just spins, or nothing at all. Here the request is
answered while Slack still waits for it (an ephemeral text for a slash command, an error under the
form's first input for a modal), or, once it has been answered, the person is told privately
afterwards (response_url, an ephemeral message in the channel, or a direct message).

Only the exception's type is logged at ERROR: its text can quote a database row or the SQL
parameters, that is, evidence. The traceback goes to DEBUG, for an operator who asks for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

SORRY = "Something went wrong on our side; your request was not completed. Please try again in a few minutes."
ARRIVED = "evidence_arrived_at"
# bolt gives up waiting for ack() after 3 s and answers Slack itself (an empty 200); an answer we
# build later than this goes nowhere, so the person is told out of band instead.
ANSWER_WITHIN_SECONDS = 2.5
ACK_POLL_SECONDS = 0.05  # longer than bolt's 10 ms poll for ack() (see on_error)

_background: set[asyncio.Task[None]] = set()


def _kind(body: dict[str, Any]) -> str:
    """What failed, in our own names only (never the text a person typed)."""
    if "command" in body:
        return f"slash command {body.get('command')}"
    kind = str(body.get("type") or "request")
    if kind == "view_submission":
        return f"view_submission {(body.get('view') or {}).get('callback_id')}"
    if kind == "block_actions":
        return f"block_actions {((body.get('actions') or [{}])[0] or {}).get('action_id')}"
    if kind in ("message_action", "shortcut"):
        return f"{kind} {body.get('callback_id')}"
    if kind == "event_callback":
        return f"event {(body.get('event') or {}).get('type')}"
    return kind


def _user_id(body: dict[str, Any]) -> str | None:
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    return str(user) if user else None


def _channel_id(body: dict[str, Any]) -> str | None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return str(channel) if channel else None


def _first_input(view: dict[str, Any]) -> str | None:
    """The block_id of the view's first input: `response_action: errors` must name one of them."""
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    state = (view.get("state") or {}).get("values") or {}
    return next(iter(state), None)


def _json(data: dict[str, Any]) -> BoltResponse:
    return BoltResponse(status=200, body=json.dumps(data), headers={"content-type": ["application/json;charset=utf-8"]})


async def _tell(client: AsyncWebClient, respond: AsyncRespond | None, body: dict[str, Any]) -> None:
    """SORRY, privately, after the request has been answered; never raises."""
    user_id, channel = _user_id(body), _channel_id(body)
    try:
        if "command" in body and respond is not None:
            await respond(text=SORRY, response_type="ephemeral", replace_original=False)
        elif user_id and channel:
            await client.chat_postEphemeral(channel=channel, user=user_id, text=SORRY)
        elif user_id:
            # A modal or the Home tab: no channel to whisper in, so a direct message.
            await client.chat_postMessage(channel=user_id, text=SORRY)
    except Exception as e:
        log.warning("could not tell %s that their request failed: %s", user_id, type(e).__name__)


def _in_background(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # Kept referenced until done: the event loop holds only a weak reference to a task.
    task = asyncio.ensure_future(make())
    _background.add(task)
    task.add_done_callback(_background.discard)


def register(app: AsyncApp) -> None:
    @app.middleware
    async def note_arrival(context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]) -> None:
        context[ARRIVED] = time.monotonic()
        await next_()

    @app.error
    async def on_error(error: Exception, body: dict[str, Any], context: AsyncBoltContext,
                       response: BoltResponse | None, client: AsyncWebClient,
                       respond: AsyncRespond | None) -> BoltResponse | None:
        body = body if isinstance(body, dict) else {}
        kind = _kind(body)
        log.error("%s failed unexpectedly: %s.%s", kind, type(error).__module__, type(error).__qualname__)
        log.debug("traceback of the failed %s", kind, exc_info=error)
        if body.get("type") == "event_callback" or not _user_id(body):
            return None  # nobody to tell; bolt keeps its default answer
        if response is None:
            # Already acknowledged (bolt passes `response` only while ack() has not been called).
            # After this handler returns, bolt resets the acknowledged answer to None, and its loop
            # that sends that answer to Slack polls every 10 ms: a listener failing just after ack()
            # would turn its answer into a 404. One longer pause lets that loop send it first.
            await asyncio.sleep(ACK_POLL_SECONDS)
            await _tell(client, respond, body)
            return None
        arrived = context.get(ARRIVED)
        if arrived is not None and time.monotonic() - arrived >= ANSWER_WITHIN_SECONDS:
            # Whatever we answer now may not reach Slack: a plain ack, and the message out of band.
            _in_background(lambda: _tell(client, respond, body))
            return BoltResponse(status=200, body="")
        if "command" in body:
            return _json({"response_type": "ephemeral", "text": SORRY})
        if body.get("type") == "view_submission":
            block = _first_input(body.get("view") or {})
            if block:
                # The form stays open with what the person typed, and says why it did not go through.
                return _json({"response_action": "errors", "errors": {block: SORRY}})
        # Answer now (Slack's 3 s), tell the person just after.
        _in_background(lambda: _tell(client, respond, body))
        return BoltResponse(status=200, body="")
