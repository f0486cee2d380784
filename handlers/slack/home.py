"""The App Home tab: for reviewers, where the call for evidence stands; for anyone else, how to submit.

Published with views.publish whenever someone opens the tab (event `app_home_opened`), so it is
as fresh as the last visit; the numbers come from bot.stats, the same as `/evidence stats`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import mrkdwn, stats
from bot.runtime.services import Services
from bot.settings import Settings
from handlers.slack.common import may_review
from handlers.slack.find import collect_stats

log = logging.getLogger(__name__)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.cut(text, 3000)}}


def _fields(title: str, lines: list[str]) -> dict[str, Any]:
    # Sections take at most 10 fields; statuses, outcomes and channels are fewer than that.
    return {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"},
            "fields": [{"type": "mrkdwn", "text": mrkdwn.cut(line, 2000)} for line in lines[:10]]}


def reviewer_home(s: stats.Stats, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Evidence: where things stand"}},
        _section(f"*{s.total}* evidence record{'s' if s.total != 1 else ''} so far."),
        _fields("By status", stats.status_lines(s)),
        _fields("By outcome", stats.outcome_lines(s)),
        _fields("By channel", stats.channel_lines(s)),
        {"type": "divider"},
        _section(stats.waiting_line(s)),
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Updated {now:%d %b %Y %H:%M} UTC. `/evidence search WORDS` finds records; "
            "`/evidence stats` shows these numbers anywhere."}]},
    ]
    return {"type": "home", "blocks": blocks}


def submitter_home(settings: Settings) -> dict[str, Any]:
    address = mrkdwn.escape(settings.evidence_addresses[0]) if settings.evidence_addresses else None
    ways = [
        "• Type `/evidence` in any channel to open the evidence form.",
        "• Or choose *Submit as evidence* from a message's ⋯ menu to start the form from that message.",
    ]
    if address:
        ways.append(f"• Or e-mail your evidence to {address} (attachments welcome).")
    return {"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Submit evidence"}},
        _section(mrkdwn.safe(settings.inquiry_title, 500)),
        _section("*How to submit*\n" + "\n".join(ways)),
        _section("*Afterwards*\n• You get a reference such as "
                 f"`{settings.reference_prefix}-000042` straight away.\n"
                 f"• `/evidence status {settings.reference_prefix}-000042` tells you where it stands.\n"
                 "• `/evidence search WORDS` searches the accepted evidence and your own submissions."),
    ]}


async def publish_home(services: Services, client: AsyncWebClient, user_id: str) -> None:
    if await may_review(services, user_id):
        view = reviewer_home(await asyncio.to_thread(collect_stats, services.engine))
    else:
        view = submitter_home(services.settings)
    try:
        await client.views_publish(user_id=user_id, view=view)
    except SlackApiError as e:
        log.warning("views.publish for %s failed: %s", user_id, e.response.get("error"))


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        # The same event comes for the Messages tab; only the Home tab has a view to publish.
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        await publish_home(services, client, str(event["user"]))
