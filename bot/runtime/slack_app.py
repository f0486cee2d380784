"""Builds the bolt AsyncApp and the aiohttp web application that serves it and /healthz."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.runtime.services import Services

log = logging.getLogger(__name__)


class CountingClient(AsyncWebClient):
    """The Web API client, telling `on_error` of every failed call (bot.runtime.metrics): every Slack call
    of the service, from the outbox and the listeners alike, goes through api_call."""

    def __init__(self, *args: Any, on_error: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_error = on_error or (lambda error: None)

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as e:
            data = e.response.data if isinstance(e.response.data, dict) else {}
            self.on_error(str(data.get("error") or f"http_{e.response.status_code}"))
            raise
        except (TimeoutError, aiohttp.ClientError):
            self.on_error("timeout_or_connection")
            raise


def make_client(settings: Any, *, on_error: Callable[[str], None] | None = None) -> AsyncWebClient:
    # SLACK_API_URL lets tests (and a proxy, if an operator needs one) stand in for slack.com.
    return CountingClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10,
                          on_error=on_error)


def build_app(services: Services, client: AsyncWebClient) -> AsyncApp:
    from handlers import slack as slack_handlers

    s = services.settings
    app = AsyncApp(
        client=client,
        signing_secret=s.slack_signing_secret or "socket-mode-has-no-signing-secret",
        # Socket Mode requests are not signed (the websocket is authenticated instead).
        request_verification_enabled=bool(s.slack_signing_secret),
        process_before_response=False,
        logger=logging.getLogger("bot.slack"),
    )
    slack_handlers.register(app, services)
    return app


def build_web(app: AsyncApp | None, health: Callable[[], Awaitable[dict[str, Any]]]) -> web.Application:
    async def events(request: web.Request) -> web.Response:
        assert app is not None
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        state = await health()
        ok = all(v in ("ok", "off") for v in state.values())
        return web.json_response(state, status=200 if ok else 503)

    web_app = web.Application()
    web_app.router.add_get("/healthz", healthz)
    if app is not None:
        web_app.router.add_post("/slack/events", events)
    return web_app
