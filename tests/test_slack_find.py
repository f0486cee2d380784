"""Finding things in Slack, end to end: /evidence search (who sees what), /evidence stats (reviewers
only), the App Home tab, and "Also reported in" on review summaries. Same harness as
tests/test_slack_flows.py: the real service, signed requests, FakeSlack."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from handlers.slack.find import NOT_REVIEWER_STATS
from tests.support.slack_requests import JSON, event_body
from tests.test_slack_flows import GOOD, REVIEWER, STRANGER, SUBMITTER, Env, running, text_of, wait_until

OTHER = {**GOOD, "project": "Bin collection", "public_body": "Leeds City Council", "supplier": "Veolia",
         "evidence": "Payroll was fine but <!channel> the bins were not collected for weeks.", "outcome": "mixed"}


@pytest.fixture
async def slack_env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


def refs_in(answer: str) -> set[str]:
    return {w.strip("*") for w in answer.split() if w.strip("*").startswith("EV-")}


async def test_search_shows_reviewers_everything_and_others_approved_and_their_own(slack_env: Env) -> None:
    env = slack_env
    mine, summary = await env.filed(GOOD, user=SUBMITTER, view_id="V1")
    theirs, _ = await env.filed(OTHER, user=STRANGER, view_id="V2")

    everything = await env.command("search payroll", user=REVIEWER)
    assert refs_in(everything) == {mine, theirs}
    assert "*payroll*" in everything.lower()  # the matched word, in bold
    assert "<!channel>" not in everything and "&lt;!channel&gt;" in everything  # record text escaped

    assert refs_in(await env.command("search payroll", user=SUBMITTER)) == {mine}
    assert refs_in(await env.command("search payroll", user=STRANGER)) == {theirs}
    assert await env.command("search bins", user=SUBMITTER) == "Nothing found for “bins”."

    await env.click("review_approve", summary)
    await wait_until(lambda: env.submission(mine).status == "approved", what="the approval")
    assert refs_in(await env.command("search payroll", user=STRANGER)) == {mine, theirs}
    # The question itself is shown escaped too; hostile syntax is just words.
    odd = await env.command('search <!here> NEAR( " *', user=REVIEWER)
    assert "<!here>" not in odd and "Nothing found" in odd
    assert "What should I look for?" in await env.command("search", user=REVIEWER)


async def test_stats_are_for_reviewers_only(slack_env: Env) -> None:
    env = slack_env
    await env.filed(GOOD, view_id="V1")
    await env.filed(OTHER, user=STRANGER, view_id="V2")
    answer = await env.command("stats", user=REVIEWER)
    assert "Evidence so far: 2" in answer
    assert "Waiting for review: 2" in answer and "Failure: 1" in answer and "Slack: 2" in answer
    assert "Oldest waiting for review: *EV-000001*" in answer and "waiting under a minute" in answer
    assert await env.command("stats", user=STRANGER) == NOT_REVIEWER_STATS
    assert await env.command("stats", user=SUBMITTER) == NOT_REVIEWER_STATS


async def _open_home(env: Env, user: str, *, tab: str = "home", n: int = 1) -> None:
    event = {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": tab,
             "event_ts": "1700000000.000100"}
    await env.post(event_body(event, event_id=f"Ev{user}{n}"), content_type=JSON)


async def test_app_home_for_a_reviewer_and_for_anyone_else(slack_env: Env) -> None:
    env = slack_env
    reference, _ = await env.filed(GOOD, view_id="V1")
    await _open_home(env, REVIEWER)
    home: dict[str, Any] = await wait_until(lambda: env.slack.home_views.get(REVIEWER), what="the reviewer's home")
    shown = text_of(home["blocks"])
    assert home["type"] == "home"
    assert "where things stand" in shown and "Waiting for review: 1" in shown and "Failure: 1" in shown
    assert f"*{reference}*" in shown and "Oldest waiting for review" in shown

    await _open_home(env, STRANGER)
    other = await wait_until(lambda: env.slack.home_views.get(STRANGER), what="the submitter's home")
    shown = text_of(other["blocks"])
    assert "How to submit" in shown and "/evidence" in shown and "evidence@localhost" in shown
    assert reference not in shown and "Waiting for review" not in shown

    # The Messages tab sends the same event; there is nothing to publish for it.
    await _open_home(env, SUBMITTER, tab="messages")
    await asyncio.sleep(0.3)
    assert SUBMITTER not in env.slack.home_views
    assert all(c.ok for c in env.slack.calls_to("views.publish"))


async def test_summary_names_the_records_it_corroborates(slack_env: Env) -> None:
    env = slack_env
    first, first_summary = await env.filed(GOOD, view_id="V1")
    assert "Also reported in" not in text_of(first_summary["blocks"])
    same = {**GOOD, "public_body": "Kent CC", "supplier": "CAPITA PLC", "project": "Payroll, again"}
    second, summary = await env.filed(same, user=STRANGER, view_id="V2")
    assert f"Also reported in {first}" in text_of(summary["blocks"])
    # The first summary shows the second once it is next updated (here: by a decision).
    await env.click("review_approve", first_summary)
    updated = await env.updated(first_summary)
    assert f"Also reported in {second}" in text_of(updated["blocks"])
    assert json.dumps(updated["blocks"]).count("Also reported in") == 1
