"""`/evidence export`: reviewers get the HTML evidence pack uploaded to the review channel.

Building a pack of many records takes longer than Slack's 3 s, so the command is acknowledged
first and the pack is built (in a thread: the database is synchronous) and uploaded afterwards with
files.getUploadURLExternal / files.completeUploadExternal (slack_sdk's files_upload_v2).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import pack
from bot.runtime.services import Services

log = logging.getLogger(__name__)

STARTED = "Building the evidence pack; it will appear in the review channel in a moment."
NOT_REVIEWER = "Only the named reviewers can export the evidence pack."


def _build(services: Services) -> tuple[str, int]:
    built = pack.collect(services.engine, status="approved", settings=services.settings)
    return pack.render(built, "html"), len(built.records)


async def upload_pack(services: Services, client: AsyncWebClient, user_id: str) -> None:
    """Builds the public pack of approved evidence and uploads it; tells the user if it fails."""
    channel = services.settings.review_channel or ""
    try:
        html, count = await asyncio.to_thread(_build, services)
        today = date.today().isoformat()
        await client.files_upload_v2(
            channel=channel,
            content=html.encode(),
            filename=f"evidence-pack-{today}.html",
            title=f"Evidence pack, {today}",
            initial_comment=f"Evidence pack of {count} approved record(s), exported by <@{user_id}>. "
                            "Open it in a browser; Print gives an A4 PDF.",
        )
    except (SlackApiError, OSError, ValueError) as e:
        log.warning("exporting the pack for %s failed: %s", user_id, e)
        await client.chat_postEphemeral(channel=channel, user=user_id,
                                        text="Sorry, the evidence pack could not be exported just now.")
