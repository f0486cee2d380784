"""`/evidence export`: the HTML pack uploaded to the review channel, for reviewers only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from handlers.slack.export import NOT_REVIEWER, STARTED
from tests.test_slack_flows import GOOD, REVIEW, REVIEWER, STRANGER, SUBMITTER, Env, running, wait_until


@pytest.fixture
async def slack_env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


async def test_a_reviewer_exports_the_pack_to_the_review_channel(slack_env: Env) -> None:
    env = slack_env
    approved, summary = await env.filed(GOOD, user=SUBMITTER, view_id="V1")
    pending, _ = await env.filed({**GOOD, "project": "Waiting project"}, user=SUBMITTER, view_id="V2")
    await env.click("review_approve", summary)
    await wait_until(lambda: env.submission(approved).status == "approved", what="the approval")

    assert await env.command("export", user=REVIEWER) == STARTED
    await env.slack.wait_for_calls("files.completeUploadExternal", timeout=15)
    (done,) = env.slack.calls_to("files.completeUploadExternal")
    assert done.ok and done.args["channel_id"] == REVIEW
    assert f"<@{REVIEWER}>" in done.args["initial_comment"]
    (html,) = [b.decode() for b in env.slack.uploads.values()]
    assert html.lower().startswith("<!doctype html>")
    assert approved in html and pending not in html  # only approved evidence goes in the pack
    assert "<script" not in html.lower()


async def test_others_cannot_export(slack_env: Env) -> None:
    env = slack_env
    assert await env.command("export", user=STRANGER) == NOT_REVIEWER
    assert await env.command("export", user=SUBMITTER) == NOT_REVIEWER
    assert env.slack.calls_to("files.getUploadURLExternal") == []
