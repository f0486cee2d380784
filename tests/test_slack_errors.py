"""A listener that fails unexpectedly: the person gets a private, human answer, not dispatch_failed.

The same setting as tests/test_slack_flows.py (the real service, signed requests, FakeSlack), with
a database that really fails: the `submission` table is renamed away under the running service,
so every read or write of a record raises from the database driver, and renamed back after.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from handlers.slack import modals
from handlers.slack.errors import SORRY
from storage.db import make_engine
from tests.support.slack_requests import slash_command_body, view_submission_payload
from tests.test_slack_flows import REVIEW, REVIEWER, SUBMITTER, Env, running, wait_until

SECRET_WORDS = "whistleblower-nightingale"


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


@contextmanager
def submission_table_gone(db_url: str) -> Iterator[None]:
    """The records' table missing, as after a botched restore or migration: a real driver error."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as c:
            c.execute(text("ALTER TABLE submission RENAME TO submission_gone"))
        try:
            yield
        finally:
            with engine.begin() as c:
                c.execute(text("ALTER TABLE submission_gone RENAME TO submission"))
    finally:
        engine.dispose()


@pytest.fixture
def error_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="handlers.slack.errors")
    return caplog


async def test_commands_that_read_records_answer_privately_when_the_database_fails(
        env: Env, db_url: str, error_logs: pytest.LogCaptureFixture) -> None:
    reference, _ = await env.filed()
    with submission_table_gone(db_url):
        for command in (f"status {reference}", "mine", f"search {SECRET_WORDS}"):
            assert await env.command(command, user=SUBMITTER) == SORRY, command
    # The database is back: so is the answer.
    assert "waiting for review" in await env.command(f"status {reference}", user=SUBMITTER)

    failures = [r for r in error_logs.records if r.name == "handlers.slack.errors" and r.levelno == logging.ERROR]
    assert len(failures) == 3
    assert all("slash command /evidence" in r.getMessage() and "sqlalchemy.exc." in r.getMessage()
               for r in failures)
    # The exception's text (SQL, parameters: here the words searched for) only with the traceback, at DEBUG.
    assert not [r for r in error_logs.records if r.levelno > logging.DEBUG
                and (SECRET_WORDS in r.getMessage() or r.exc_info)]
    tracebacks = [r for r in error_logs.records if r.name == "handlers.slack.errors" and r.exc_info]
    assert len(tracebacks) == 3 and all(r.levelno == logging.DEBUG for r in tracebacks)


async def test_a_command_failing_after_its_answer_is_followed_up_through_response_url(
        env: Env, db_url: str) -> None:
    """`/evidence export` answers at once, then reads the records: its failure comes too late for
    the answer, so the reviewer hears of it through the command's response_url."""
    await env.filed()
    with submission_table_gone(db_url):
        _, answer = await env.post(slash_command_body(text="export", user_id=REVIEWER,
                                                      response_url=env.slack.response_url("R1")))
        assert "Building the evidence pack" in answer
        (said,) = await wait_until(lambda: env.slack.responses.get("R1"), what="the follow-up")
    assert said["text"] == SORRY and said["response_type"] == "ephemeral"
    assert env.slack.calls_to("files.completeUploadExternal") == []


async def test_a_review_form_stays_open_with_a_message_when_the_database_fails(env: Env, db_url: str) -> None:
    reference, summary = await env.filed()
    for callback_id, field in ((modals.REJECT, "reason"), (modals.NEEDS_INFO, "question")):
        payload = view_submission_payload(
            callback_id, {field: {field: "Out of scope"}}, user_id=REVIEWER, view_id=f"V-{callback_id}",
            private_metadata=modals.review_metadata(reference, REVIEW, summary["ts"]))
        with submission_table_gone(db_url):
            answer = json.loads(await env.interact(payload))
        assert answer == {"response_action": "errors", "errors": {field: SORRY}}, callback_id
    assert env.submission(reference).status == "received" and env.audit(reference) == []


async def test_the_edit_form_names_its_first_input_when_the_database_fails(env: Env, db_url: str) -> None:
    """The error must sit under an input of the submitted view (Slack refuses any other block_id)."""
    reference, summary = await env.filed()
    view = modals.edit_modal(reference, {"supplier": "Capita"}, REVIEW, summary["ts"])
    state = {"supplier": {"supplier": "Capita plc"}}
    with submission_table_gone(db_url):
        answer = json.loads(await env.interact(view_submission_payload(
            modals.EDIT, state, user_id=REVIEWER, private_metadata=view["private_metadata"], view_id="V2",
            blocks=view["blocks"])))
    assert answer == {"response_action": "errors", "errors": {"title": SORRY}}
    assert env.submission(reference).supplier == "Capita"


async def test_a_button_click_gets_a_private_message_when_the_database_fails(env: Env, db_url: str) -> None:
    reference, summary = await env.filed()
    with submission_table_gone(db_url):
        for action in ("review_approve", "review_reject"):
            assert await env.click(action, summary) == ""
        notes = await wait_until(lambda: (lambda n: n if len(n) >= 2 else None)(env.ephemerals_to(REVIEWER)),
                                 what="two private notes")
    assert [(n["text"], n["channel"]) for n in notes] == [(SORRY, REVIEW)] * 2
    await asyncio.sleep(0.2)
    assert env.submission(reference).status == "received"
    assert env.opened_views(modals.REJECT) == []
