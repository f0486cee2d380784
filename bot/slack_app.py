"""Builds the bolt AsyncApp and the aiohttp web application that serves it and /healthz."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services

log = logging.getLogger(__name__)


def make_client(settings: Any) -> AsyncWebClient:
    # SLACK_API_URL lets tests (and a proxy, if an operator needs one) stand in for slack.com.
    return AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


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
