"""Drive the service the way Slack does: signed HTTP requests with Slack's body shapes.

Slash commands and interactions arrive form-encoded (interactions as ``payload=<json>``), Events
API callbacks as JSON, each signed with ``X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:ts:body")``
and ``X-Slack-Request-Timestamp``. Payload builders produce the fields Slack sends that a handler
is likely to read (ids, trigger_id, response_url, container, state.values), not every field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

JsonDict = dict[str, Any]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake"
APP_ID = "A0FAKE"
# The deprecated verification token Slack still puts in bodies; signature checks replace it.
VERIFICATION_TOKEN = "verification-token"
DEFAULT_RESPONSE_URL = "https://hooks.slack.com/commands/T0FAKE/1/fake"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request-signing headers for ``body`` (timestamp defaults to now)."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(ts)}


def _user(user_id: str) -> JsonDict:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def _team() -> JsonDict:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def slash_command_body(
    command: str = "/evidence",
    text: str = "",
    user_id: str = "U1",
    channel_id: str = "C1",
    trigger_id: str = "T1",
    response_url: str = DEFAULT_RESPONSE_URL,
    *,
    channel_name: str = "general",
    user_name: str | None = None,
) -> bytes:
    """A slash-command POST body, form-encoded with the fields in Slack's order."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()


def interaction_body(payload: JsonDict) -> bytes:
    """An interactivity POST body: form-encoded ``payload=<json>``."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def event_body(event: JsonDict, *, event_id: str = "Ev1", event_time: int | None = None) -> bytes:
    """An Events API ``event_callback`` JSON body (post it with content_type=JSON)."""
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()) if event_time is None else event_time,
    }
    return json.dumps(envelope).encode()


def text_value(value: str | None) -> JsonDict:
    """state.values entry for a plain_text_input (Slack sends null for an empty optional input)."""
    return {"type": "plain_text_input", "value": value}


def select_value(value: str | None, text: str | None = None) -> JsonDict:
    """state.values entry for a static_select (selected_option is null when nothing is chosen)."""
    option = (
        None
        if value is None
        else {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    )
    return {"type": "static_select", "selected_option": option}


def _state_values(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, JsonDict]]:
    # A bare string (or None) means a plain_text_input; dicts are taken as already in Slack's shape.
    return {
        block_id: {
            action_id: value if isinstance(value, dict) else text_value(value) for action_id, value in actions.items()
        }
        for block_id, actions in values.items()
    }


def block_action_payload(
    action_id: str,
    value: str | None = None,
    user_id: str = "U1",
    channel_id: str = "C1",
    message_ts: str = "1700000000.000100",
    trigger_id: str = "T1",
    *,
    block_id: str = "actions",
    action_type: str = "button",
    message: JsonDict | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0FAKE/1/fake",
    state_values: dict[str, dict[str, Any]] | None = None,
) -> JsonDict:
    """A block_actions payload for a click on a button (or a static_select with action_type="static_select")."""
    action: JsonDict = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": f"{time.time():.6f}",
    }
    if action_type == "static_select":
        action["selected_option"] = select_value(value)["selected_option"]
    else:
        action["text"] = {"type": "plain_text", "text": action_id, "emoji": True}
        if value is not None:
            action["value"] = value
    msg = {"type": "message", "ts": message_ts, "text": "", "blocks": [], **(message or {})}
    return {
        "type": "block_actions",
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "team": _team(),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": msg,
        "state": {"values": _state_values(state_values or {})},
        "response_url": response_url,
        "actions": [action],
    }


def view_submission_payload(
    callback_id: str,
    values: dict[str, dict[str, Any]],
    user_id: str = "U1",
    private_metadata: str = "",
    *,
    view_id: str = "V1",
    trigger_id: str = "T1",
    blocks: list[JsonDict] | None = None,
) -> JsonDict:
    """A view_submission payload; ``values`` is {block_id: {action_id: str | None | text_value() | select_value()}}."""
    return {
        "type": "view_submission",
        "team": _team(),
        "user": _user(user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": _state_values(values)},
            "hash": "1700000000.abcdef12",
            "title": {"type": "plain_text", "text": "Evidence", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": "B0BOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_action_payload(
    callback_id: str,
    message_text: str,
    user_id: str = "U1",
    channel_id: str = "C1",
    message_ts: str = "1700000000.000100",
    trigger_id: str = "T1",
    *,
    message_user: str = "U2",
    response_url: str = "https://hooks.slack.com/app/T0FAKE/1/fake",
) -> JsonDict:
    """A message_action payload (the "More actions" menu on a message)."""
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": _team(),
        "user": _user(user_id),
        "channel": {"id": channel_id, "name": "general"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": message_ts,
        "message": {"type": "message", "text": message_text, "user": message_user, "ts": message_ts, "team": TEAM_ID},
    }


def shortcut_payload(callback_id: str, user_id: str = "U1", trigger_id: str = "T1") -> JsonDict:
    """A global shortcut payload."""
    return {
        "type": "shortcut",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": _team(),
        "user": _user(user_id),
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
    }


async def post_signed(
    url: str,
    body: bytes,
    secret: str,
    *,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
    content_type: str = FORM,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """POST ``body`` signed with ``secret`` like Slack; returns (status, response text).

    ``retry_num`` adds X-Slack-Retry-Num/Reason as Slack does on redelivery; ``headers`` override
    anything (e.g. a forged X-Slack-Signature).
    """
    all_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    all_headers.update(sign(body, secret, timestamp))
    if retry_num is not None:
        all_headers["X-Slack-Retry-Num"] = str(retry_num)
        all_headers["X-Slack-Retry-Reason"] = retry_reason
    all_headers.update(headers or {})
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, data=body, headers=all_headers) as res,
    ):
        return res.status, await res.text()
