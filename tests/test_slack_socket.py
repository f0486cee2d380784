"""Socket Mode against a local websocket endpoint, and /healthz reporting what is up."""

from __future__ import annotations

from urllib.parse import parse_qsl

import aiohttp

from bot.runtime.service import Service
from storage.db import make_engine
from tests.conftest import make_settings
from tests.support.slack_api import FakeSlack
from tests.support.slack_requests import slash_command_body


async def _health(port: int) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
        return r.status, await r.json()


async def test_socket_mode_slash_command_opens_the_modal(db_url: str) -> None:
    async with FakeSlack() as slack:
        settings = make_settings(db_url, SLACK_BOT_TOKEN="xoxb-test", SLACK_APP_TOKEN="xapp-test",
                                 SLACK_API_URL=slack.api_url, EVIDENCE_REVIEW_CHANNEL="C0REVIEW")
        async with Service(settings, smtp=False) as svc:
            await slack.wait_socket_connected()
            assert slack.calls_to("apps.connections.open")
            status, health = await _health(svc.web_port)
            assert status == 200 and health == {"database": "ok", "smtp": "off", "slack": "ok"}
            # Socket Mode carries the slash command as a parsed payload instead of a signed POST.
            payload = dict(parse_qsl(slash_command_body(text="submit", user_id="U0SUB", trigger_id="T9").decode()))
            ack = await slack.socket_send_envelope("slash_commands", payload)
            assert "envelope_id" in ack
            (call,) = await slack.wait_for_calls("views.open")
            assert call.args["trigger_id"] == "T9"
            assert call.args["view"]["callback_id"] == "evidence_submit"
            # No HTTP endpoint is needed (nor served) for Slack in Socket Mode.
            async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{svc.web_port}/slack/events", data=b"x"
            ) as r:
                assert r.status == 404


async def test_healthz_without_slack_and_with_a_broken_database(db_url: str) -> None:
    async with Service(make_settings(db_url)) as svc:
        status, health = await _health(svc.web_port)
        assert status == 200 and health == {"database": "ok", "smtp": "ok", "slack": "off"}
        # The database goes away (here: the service is handed one that refuses connections).
        working, svc.engine = svc.engine, make_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
        try:
            status, health = await _health(svc.web_port)
        finally:
            svc.engine.dispose()
            svc.engine = working
        assert status == 503 and health == {"database": "error", "smtp": "ok", "slack": "off"}
