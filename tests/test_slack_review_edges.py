"""Hostile, careless or unlucky input against the review channel: what a summary shows, and what the
reviewers' forms do with it.

The same setting as tests/test_slack_flows.py: the real service, signed requests shaped like
Slack's, FakeSlack (which refuses what Slack refuses), and the database read back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot import drafts, intake
from bot.review import parse_edit
from bot.runtime.service import Service
from storage import repo
from storage.db import unit_of_work
from tests.support.slack_api import FakeSlack, validate_blocks
from tests.support.slack_requests import view_submission_payload
from tests.test_slack_flows import REVIEWER, Env, ask_for_more, running, state_from_view, text_of, wait_until
from tests.test_slack_outbox import CHANNEL, recorded_ts, slack_settings, wait_for


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


def file_mail(engine: Engine, settings: Any, raw: str) -> str:
    """One e-mail stored and filed as the SMTP door would; its reference."""
    intake.store_now(engine, drafts.draft(raw.encode(), envelope_from="ann@example.org",
                                          rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings, limit=1)
    assert filed.reference
    return filed.reference


async def test_a_very_long_sender_name_still_reaches_the_review_channel(db_url: str, engine: Engine) -> None:
    """The From header's display name has no length limit; 700 '&' escape to 3,500 characters,
    over what a context element takes. The summary must still be posted (cut), not refused by
    Slack as invalid_blocks and dropped from review for good."""
    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        name = "&" * 700 + " " + "Ann " * 900
        ref = file_mail(engine, settings, (
            f'From: "{name}" <ann@example.org>\r\nTo: evidence@localhost\r\nSubject: Payroll\r\n'
            "Message-ID: <long-name@example.org>\r\n\r\nPublic body: Kent County Council\r\n\r\n"
            "The payroll contract failed.\r\n"))
        async with Service(settings, smtp=False, slack_post_interval=0):
            await wait_for(lambda: recorded_ts(engine)[ref], timeout=15)
        assert not [c for c in slack.calls_to("chat.postMessage") if c.rejected]
        (post,) = slack.posted_messages(CHANNEL)
        assert validate_blocks(post["blocks"], max_blocks=50) == []
        line = next(e["text"] for b in post["blocks"] if b["type"] == "context" for e in b["elements"]
                    if e["text"].startswith("Submitter:"))
        assert "&amp;&amp;" in line and "&lt;ann@example.org&gt;" in line and len(line) < 1000


async def test_the_question_asked_shows_on_the_summary(env: Env) -> None:
    """After "Request more information" the summary says what was asked, escaped, not a bare
    "More information requested:" with nothing after it."""
    reference, summary = await env.filed()
    await ask_for_more(env, summary, "Which year did it start? <!here>")
    after = await env.updated(summary)
    shown = text_of(after["blocks"])
    assert "More information requested: Which year did it start? &lt;!here&gt;" in shown
    assert "<!here>" not in shown


async def open_edit_form(env: Env, summary: dict[str, Any], n: int) -> dict[str, Any]:
    await env.click("review_edit", summary)
    views = await wait_until(lambda: (lambda v: v if len(v) >= n else None)(env.opened_views("review_edit")),
                             what="the edit form")
    return views[n - 1]


async def save_edit(env: Env, view: dict[str, Any], view_id: str, **changes: str | None) -> str:
    # Slack sends the view as it was opened (its blocks, with their initial values) and the state.
    return await env.interact(view_submission_payload(
        "review_edit", state_from_view(view, **changes), user_id=REVIEWER,
        private_metadata=view["private_metadata"], view_id=view_id, blocks=view["blocks"]))


async def test_two_reviewers_editing_at_once_keep_both_corrections(env: Env) -> None:
    """Both open the edit form; one corrects the supplier, the other the period. The second save
    must not put back the supplier its form was opened with."""
    reference, summary = await env.filed()
    first = await open_edit_form(env, summary, 1)
    second = await open_edit_form(env, summary, 2)
    assert await save_edit(env, first, "V2", supplier="Capita plc") == ""
    assert await save_edit(env, second, "V3", period="2019 to 2021") == ""
    sub = env.submission(reference)
    assert sub.supplier == "Capita plc" and sub.period == "2019 to 2021"
    assert [json.loads(a.after or "{}") for a in env.audit(reference)] == [
        {"supplier": "Capita plc"}, {"period": "2019 to 2021"}]


async def test_saving_the_edit_form_does_not_cut_a_long_title(env: Env) -> None:
    """A title longer than the form's one-line input (an e-mail subject can be) is shown cut; saving
    a correction of another field must not store the cut title."""
    reference, summary = await env.filed()
    title = "Payroll shared service " + "and more " * 80
    with unit_of_work(env.svc.engine) as s:
        sub = repo.get_submission(s, reference=reference)
        assert sub is not None and sub.id is not None
        repo.update_submission(s, submission_id=sub.id, values={"title": title})
    view = await open_edit_form(env, summary, 1)
    shown = next(b for b in view["blocks"] if b.get("block_id") == "title")["element"]["initial_value"]
    assert len(shown) < len(title)
    assert await save_edit(env, view, "V2", supplier="Capita plc") == ""
    sub = env.submission(reference)
    assert sub.supplier == "Capita plc" and sub.title == title
    assert [json.loads(a.after or "{}") for a in env.audit(reference)] == [{"supplier": "Capita plc"}]


async def test_clearing_a_field_in_the_edit_form_still_clears_it(env: Env) -> None:
    reference, summary = await env.filed()
    view = await open_edit_form(env, summary, 1)
    assert await save_edit(env, view, "V2", supplier=None) == ""
    assert env.submission(reference).supplier is None


def test_a_negative_amount_is_refused_not_stored_as_positive() -> None:
    """parse_money finds the figure in "-£5m" and drops the sign; in the edit form that turned a
    loss a reviewer typed into savings of £5m."""
    for text in ("-£5m", "−£5m", "– £750k", "minus £5m", "(£5m)", "-5000000", "£-5m"):
        changes, errors = parse_edit({"savings_gbp": text})
        assert "savings_gbp" in errors and "savings_gbp" not in changes, text
    changes, errors = parse_edit({"savings_gbp": "£5m", "contract_value_gbp": " 4,200,000 "})
    assert errors == {} and changes == {"savings_gbp": 5_000_000, "contract_value_gbp": 4_200_000}


async def test_a_negative_amount_in_the_edit_form_keeps_the_form_open(env: Env) -> None:
    reference, summary = await env.filed()
    view = await open_edit_form(env, summary, 1)
    answer = json.loads(await save_edit(env, view, "V2", savings_gbp="-£5m"))
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"savings_gbp"}
    await asyncio.sleep(0.2)
    assert env.submission(reference).savings_gbp is None and env.audit(reference) == []


async def test_a_summary_slack_refuses_is_posted_plainly_not_lost(db_url: str, engine: Engine) -> None:
    """invalid_blocks is final: if Slack refuses a summary's blocks (a limit nobody foresaw), the
    record still reaches the review channel, plainly, with its buttons, and its decision still shows."""
    from bot.decisions import decide
    from bot.review import Action

    async with FakeSlack(post_interval=0) as slack:
        settings = slack_settings(db_url, slack)
        ref = file_mail(engine, settings, (
            "From: Ann <ann@example.org>\r\nTo: evidence@localhost\r\nSubject: Payroll <!channel>\r\n"
            "Message-ID: <refused@example.org>\r\n\r\nPublic body: Kent County Council\r\n\r\nIt failed.\r\n"))
        slack.error_next("chat.postMessage", "invalid_blocks")
        async with Service(settings, smtp=False, slack_post_interval=0) as svc:
            await wait_for(lambda: recorded_ts(engine)[ref], timeout=15)
            (post,) = slack.posted_messages(CHANNEL)
            assert ref in post["blocks"][0]["text"]["text"] and "&lt;!channel&gt;" in post["blocks"][0]["text"]["text"]
            assert post["blocks"][0]["accessory"]["action_id"] == "review_read"
            assert [e["action_id"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
                "review_approve", "review_reject", "review_needs_info", "review_edit"]

            slack.error_next("chat.update", "invalid_blocks")
            await asyncio.to_thread(decide, engine, settings, reference=ref, action=Action.REJECT,
                                    actor="cli:Sam", reason="Out of scope")
            svc.worker.wake()
            await wait_for(lambda: slack.messages[(CHANNEL, post["ts"])].get("update_count"), timeout=15)
        after = slack.messages[(CHANNEL, post["ts"])]
        assert not [b for b in after["blocks"] if b["type"] == "actions"]
        assert "Rejected* by Sam" in text_of(after["blocks"]) and "Out of scope" in text_of(after["blocks"])
        assert [c.error for c in slack.calls_to("chat.postMessage")] == ["invalid_blocks", None]
