"""The Slack door end to end: the real service, signed requests shaped like Slack's, a local Slack.

Each test starts `bot.runtime.service.Service` against FakeSlack (tests/support/slack_api.py) and POSTs
what Slack would POST to /slack/events; what the service does in return is read back from the
calls FakeSlack recorded and from the database. Nothing in the service is mocked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot.runtime.service import Service
from storage import repo
from storage.db import unit_of_work
from storage.models import Audit, Inbound, Submission
from tests.conftest import make_settings
from tests.support.slack_api import FakeSlack
from tests.support.slack_requests import (
    FORM,
    block_action_payload,
    interaction_body,
    message_action_payload,
    post_signed,
    select_value,
    sign,
    slash_command_body,
    view_submission_payload,
)

SECRET = "test-secret"
REVIEW = "C0REVIEW"
SUBMITTER = "U1"
REVIEWER = "U0REV1"
STRANGER = "U9"

GOOD = {
    "project": "Payroll shared service",
    "public_body": "Kent County Council",
    "supplier": "Capita",
    "contract_value": "£45m",
    "savings": "",
    "evidence": "The payroll outsourcing failed: staff were paid late for six months and costs rose.",
    "outcome": "failure",
}


async def wait_until(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Polls `check` until it returns something truthy; the service works after answering Slack."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def form_values(values: Mapping[str, str | None]) -> dict[str, dict[str, Any]]:
    """state.values for the evidence modal: block_id = action_id = input name, selects as options."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        out[name] = {name: select_value(value) if name in ("outcome", "confidential") else value}
    return out


def state_from_view(view: dict[str, Any], **changes: str | None) -> dict[str, dict[str, Any]]:
    """What Slack sends back for a modal the person submits unchanged except for `changes`."""
    out: dict[str, dict[str, Any]] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        el, bid = block["element"], block["block_id"]
        if el["type"] == "plain_text_input":
            value = changes.get(bid, el.get("initial_value"))
            out[bid] = {el["action_id"]: value}
        else:
            chosen = changes.get(bid, (el.get("initial_option") or {}).get("value"))
            out[bid] = {el["action_id"]: select_value(chosen)}
    return out


@dataclass
class Env:
    slack: FakeSlack
    svc: Service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.svc.web_port}/slack/events"

    async def post(self, body: bytes, **kw: Any) -> tuple[int, str]:
        status, text = await post_signed(self.url, body, SECRET, **kw)
        assert status == 200, (status, text)
        return status, text

    async def command(self, text: str = "", user: str = SUBMITTER) -> str:
        """The command's private answer: bolt sends a text-only ack as a plain-text body (ephemeral)."""
        _, answer = await self.post(slash_command_body(text=text, user_id=user))
        if answer.startswith("{"):
            data = json.loads(answer)
            assert data.get("response_type", "ephemeral") == "ephemeral"
            return str(data.get("text", ""))
        return answer

    async def interact(self, payload: dict[str, Any], **kw: Any) -> str:
        _, answer = await self.post(interaction_body(payload), **kw)
        return answer

    def submission(self, reference: str) -> Submission:
        with unit_of_work(self.svc.engine) as s:
            sub = repo.get_submission(s, reference=reference)
            assert sub is not None
            return sub

    def audit(self, reference: str) -> list[Audit]:
        with unit_of_work(self.svc.engine) as s:
            sub = repo.get_submission(s, reference=reference)
            assert sub is not None and sub.id is not None
            return repo.audit_of(s, submission_id=sub.id)

    def submissions(self) -> list[Submission]:
        with unit_of_work(self.svc.engine) as s:
            return repo.list_submissions(s)

    async def submit(self, values: Mapping[str, str | None] | None = None, *, user: str = SUBMITTER,
                     view_id: str = "V1", **kw: Any) -> str:
        """Submits the evidence form; returns the HTTP answer's text."""
        payload = view_submission_payload("evidence_submit", form_values(values or GOOD), user_id=user,
                                          view_id=view_id)
        return await self.interact(payload, **kw)

    async def summary(self, reference: str) -> dict[str, Any]:
        """The summary message posted for `reference` in the review channel (waits for it)."""
        def posted() -> dict[str, Any] | None:
            return next((m for m in self.slack.posted_messages(REVIEW) if reference in m.get("text", "")), None)

        return await wait_until(posted, what=f"the summary of {reference}")

    async def filed(self, values: Mapping[str, str | None] | None = None, *, user: str = SUBMITTER,
                    view_id: str = "V1") -> tuple[str, dict[str, Any]]:
        """A stored, summarised submission: (reference, summary message)."""
        before = len(self.submissions())
        await self.submit(values, user=user, view_id=view_id)
        subs = await wait_until(lambda: (lambda s: s if len(s) > before else None)(self.submissions()),
                                what="the record")
        reference = subs[-1].reference
        assert reference
        return reference, await self.summary(reference)

    async def click(self, action: str, summary: dict[str, Any], user: str = REVIEWER) -> str:
        ref = next(e["value"] for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == action)
        return await self.interact(block_action_payload(action, ref, user_id=user, channel_id=REVIEW,
                                                        message_ts=summary["ts"]))

    async def updated(self, summary: dict[str, Any], count: int = 1) -> dict[str, Any]:
        """The summary after `count` chat.update calls on it."""
        def done() -> dict[str, Any] | None:
            m = self.slack.messages.get((REVIEW, summary["ts"]))
            return m if m and m.get("update_count", 0) >= count else None

        return await wait_until(done, what="the summary to be updated")

    def ephemerals_to(self, user: str) -> list[dict[str, Any]]:
        return [e for e in self.slack.ephemerals if e["user"] == user]

    def dms_to(self, user: str) -> list[dict[str, Any]]:
        return self.slack.posted_messages(self.slack.dm_channel(user))

    def opened_views(self, callback_id: str) -> list[dict[str, Any]]:
        return [c.args["view"] for c in self.slack.calls_to("views.open") if c.ok
                and c.args["view"].get("callback_id") == callback_id]


@asynccontextmanager
async def running(db_url: str, *, groups: dict[str, list[str]] | None = None) -> AsyncIterator[Env]:
    # post_interval=0: no per-channel pacing in the stand-in, so tests don't wait out 429s.
    async with FakeSlack(post_interval=0) as slack:
        slack.usergroups = dict(groups or {})
        settings = make_settings(db_url, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=SECRET,
                                 SLACK_API_URL=slack.api_url, EVIDENCE_REVIEW_CHANNEL=REVIEW,
                                 EVIDENCE_REVIEWERS=f"{REVIEWER},S0GROUP", PORT=0)
        async with Service(settings, smtp=False) as svc:
            yield Env(slack, svc)


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


def text_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# --------------------------------------------------------------------------- the form


async def test_slash_command_opens_the_form(env: Env) -> None:
    assert await env.command("") == ""
    views = await wait_until(lambda: env.opened_views("evidence_submit"), what="views.open")
    view = views[0]
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert {"project", "public_body", "evidence", "outcome", "confidential", "contract_value"} <= set(inputs)
    assert inputs["evidence"]["element"]["max_length"] == 3000
    assert env.slack.calls_to("views.open")[0].args["trigger_id"] == "T1"
    await env.command("submit")
    await wait_until(lambda: len(env.opened_views("evidence_submit")) == 2, what="a second form")


async def test_web_api_calls_share_one_connection(env: Env) -> None:
    """One pooled session for the Web API: no TCP (and, at slack.com, TLS) set-up per call."""
    for n in range(1, 4):
        await env.command("")

        def opened(n: int = n) -> bool:
            return len(env.opened_views("evidence_submit")) == n

        await wait_until(opened, what="views.open")
    peers = {c.peer for c in env.slack.calls_to("views.open")}
    assert len(peers) == 1 and None not in peers


async def test_bad_money_keeps_the_form_open_with_errors(env: Env) -> None:
    answer = json.loads(await env.submit({**GOOD, "contract_value": "lots", "project": ""}))
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"contract_value", "project"}
    assert "Not an amount of money" in answer["errors"]["contract_value"]
    await asyncio.sleep(0.2)
    assert env.submissions() == []


async def test_good_submission_is_filed_acknowledged_and_summarised(env: Env) -> None:
    assert await env.submit() == ""
    subs = await wait_until(env.submissions, what="the record")
    sub = subs[0]
    reference = sub.reference
    assert reference == "EV-000001"
    assert sub.channel == "slack" and sub.slack_user_id == SUBMITTER and sub.submitter_name == "u1"
    assert sub.contract_value_gbp == 45_000_000 and sub.outcome == "failure" and sub.status == "received"
    summary = await env.summary(reference)
    assert summary["channel"] == REVIEW
    assert [e["action_id"] for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
        "review_approve", "review_reject", "review_needs_info", "review_edit"]
    dm = await wait_until(lambda: env.dms_to(SUBMITTER), what="the receipt DM")
    assert reference in dm[0]["text"]


async def test_slack_retry_of_the_same_submission_stores_once(env: Env) -> None:
    await env.submit(view_id="V42")
    await env.submit(view_id="V42", retry_num=1)
    await env.summary("EV-000001")
    await asyncio.sleep(0.3)
    with unit_of_work(env.svc.engine) as s:
        assert len(list(s.exec(select(Inbound)).all())) == 1
    assert len(env.submissions()) == 1
    assert len([m for m in env.slack.posted_messages(REVIEW)]) == 1


# --------------------------------------------------------------------------- /evidence status, help


async def test_status_for_the_submitter_a_reviewer_and_a_stranger(env: Env) -> None:
    reference, _ = await env.filed()
    mine = await env.command(f"status {reference}", user=SUBMITTER)
    assert reference in mine and "waiting for review" in mine and "Payroll shared service" in mine
    assert "ev-1" not in mine
    assert reference in await env.command("status ev-1", user=REVIEWER)
    assert await env.command(f"status {reference}", user=STRANGER) == (
        "You can only see the status of your own submissions.")
    # A reference that does not exist gets the same answer: nothing to learn by probing.
    assert await env.command("status EV-000999", user=STRANGER) == (
        "You can only see the status of your own submissions.")
    assert "no record EV-000999" in await env.command("status EV-000999", user=REVIEWER)
    assert "Which record?" in await env.command("status", user=SUBMITTER)


async def test_help_and_unknown_subcommands_answer_privately(env: Env) -> None:
    help_text = await env.command("help")
    assert "/evidence status" in help_text
    unknown = await env.command("frobnicate <!channel>")
    assert "I don't know" in unknown and "/evidence status" in unknown
    assert "<!channel>" not in unknown
    assert env.slack.calls_to("views.open") == []


# --------------------------------------------------------------------------- review buttons


async def test_reviewer_approves_and_the_summary_loses_its_buttons(env: Env) -> None:
    reference, summary = await env.filed()
    assert await env.click("review_approve", summary) == ""
    after = await env.updated(summary)
    assert not [b for b in after["blocks"] if b["type"] == "actions"]
    shown = text_of(after["blocks"])
    assert f"Approved* by <@{REVIEWER}>" in shown
    sub = env.submission(reference)
    assert sub.status == "approved" and sub.decided_by == f"slack:{REVIEWER}"
    status = await env.command(f"status {reference}", user=SUBMITTER)
    assert "accepted" in status and f"<@{REVIEWER}>" in status
    dms = await wait_until(lambda: [m for m in env.dms_to(SUBMITTER) if "accepted" in m["text"]],
                           what="the decision DM")
    assert reference in dms[0]["text"]


async def test_non_reviewer_cannot_decide(env: Env) -> None:
    reference, summary = await env.filed()
    await env.click("review_approve", summary, user=SUBMITTER)
    notes = await wait_until(lambda: env.ephemerals_to(SUBMITTER), what="the refusal")
    assert "not one of them" in notes[0]["text"] and notes[0]["channel"] == REVIEW
    for action in ("review_reject", "review_needs_info", "review_edit"):
        await env.click(action, summary, user=STRANGER)
    await wait_until(lambda: len(env.ephemerals_to(STRANGER)) == 3, what="three refusals")
    assert env.submission(reference).status == "received"
    assert env.audit(reference) == []
    assert env.slack.calls_to("views.open") == []
    assert env.slack.calls_to("chat.update") == []


async def test_member_of_a_reviewer_group_may_decide(db_url: str) -> None:
    async with running(db_url, groups={"S0GROUP": ["U0GRP"]}) as env:
        reference, summary = await env.filed()
        await env.click("review_approve", summary, user="U0GRP")
        await env.updated(summary)
        assert env.submission(reference).decided_by == "slack:U0GRP"
        assert env.ephemerals_to("U0GRP") == []


async def test_failed_group_lookup_denies(db_url: str) -> None:
    async with running(db_url, groups={"S0GROUP": ["U0GRP"]}) as env:
        reference, summary = await env.filed()
        env.slack.fail_next("usergroups.users.list", 500)
        await env.click("review_approve", summary, user="U0GRP")
        notes = await wait_until(lambda: env.ephemerals_to("U0GRP"), what="the refusal")
        assert "not one of them" in notes[0]["text"]
        assert env.submission(reference).status == "received"
        # A named reviewer does not depend on the lookup.
        await env.click("review_approve", summary, user=REVIEWER)
        await env.updated(summary)


async def test_double_click_decides_once_and_tells_who_decided(env: Env) -> None:
    reference, summary = await env.filed()
    await asyncio.gather(env.click("review_approve", summary), env.click("review_approve", summary))
    notes = await wait_until(lambda: env.ephemerals_to(REVIEWER), what="the second click's answer")
    assert f"{reference} was already approved by <@{REVIEWER}>" in notes[0]["text"]
    await env.updated(summary)
    await asyncio.sleep(0.3)
    assert len(env.ephemerals_to(REVIEWER)) == 1
    assert [a.action for a in env.audit(reference)] == ["approve"]


async def test_reject_needs_a_reason_and_shows_it(env: Env) -> None:
    reference, summary = await env.filed()
    await env.click("review_reject", summary)
    view = (await wait_until(lambda: env.opened_views("review_reject"), what="the reject form"))[0]
    meta = json.loads(view["private_metadata"])
    assert meta == {"reference": reference, "channel": REVIEW, "ts": summary["ts"]}

    empty = json.loads(await env.interact(view_submission_payload(
        "review_reject", {"reason": {"reason": "  "}}, user_id=REVIEWER, private_metadata=view["private_metadata"])))
    assert empty["response_action"] == "errors" and set(empty["errors"]) == {"reason"}
    assert env.submission(reference).status == "received"

    reason = "Out of scope: <this> is about a charity & not a public body"
    assert await env.interact(view_submission_payload(
        "review_reject", {"reason": {"reason": reason}}, user_id=REVIEWER,
        private_metadata=view["private_metadata"], view_id="V2")) == ""
    after = await env.updated(summary)
    shown = text_of(after["blocks"])
    assert "Rejected" in shown and "Out of scope: &lt;this&gt; is about a charity &amp; not a public body" in shown
    sub = env.submission(reference)
    assert sub.status == "rejected" and sub.decision_reason == reason

    # The summary has no buttons now, but an old client may still show them.
    await env.click("review_needs_info", summary)
    notes = await wait_until(lambda: env.ephemerals_to(REVIEWER), what="the refusal")
    assert f"{reference} was already rejected by <@{REVIEWER}>" in notes[0]["text"]


async def test_reject_form_submitted_by_a_non_reviewer_is_refused(env: Env) -> None:
    reference, _ = await env.filed()
    answer = json.loads(await env.interact(view_submission_payload(
        "review_reject", {"reason": {"reason": "no"}}, user_id=STRANGER,
        private_metadata=json.dumps({"reference": reference}))))
    assert answer["response_action"] == "errors" and "not one of them" in answer["errors"]["reason"]
    assert env.submission(reference).status == "received"


async def ask_for_more(env: Env, summary: dict[str, Any], question: str) -> None:
    """A reviewer clicks "Request more information" on `summary` and sends `question`."""
    await env.click("review_needs_info", summary)
    view = (await wait_until(lambda: env.opened_views("review_needs_info"), what="the question form"))[0]
    assert await env.interact(view_submission_payload(
        "review_needs_info", {"question": {"question": question}}, user_id=REVIEWER,
        private_metadata=view["private_metadata"], view_id="V2")) == ""


async def test_needs_info_asks_the_submitter_by_dm(env: Env) -> None:
    reference, summary = await env.filed()
    await ask_for_more(env, summary, "Which year did the contract start? <@U0REV1>")
    dms = await wait_until(lambda: [m for m in env.dms_to(SUBMITTER) if "Which year" in m["text"]],
                           what="the question DM")
    assert "Which year did the contract start? &lt;@U0REV1&gt;" in dms[0]["text"]
    assert env.submission(reference).status == "needs_info"
    after = await env.updated(summary)
    assert [b for b in after["blocks"] if b["type"] == "actions"]  # still open to a decision
    status = await env.command(f"status {reference}", user=SUBMITTER)
    assert "more information" in status and "Which year did the contract start?" in status


async def test_edit_fields_updates_the_record_and_audits_before_and_after(env: Env) -> None:
    reference, summary = await env.filed()
    await env.click("review_edit", summary)
    view = (await wait_until(lambda: env.opened_views("review_edit"), what="the edit form"))[0]
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs["contract_value_gbp"]["initial_value"] == "45000000"
    assert inputs["supplier"]["initial_value"] == "Capita"
    assert inputs["outcome"]["initial_option"]["value"] == "failure"

    bad = json.loads(await env.interact(view_submission_payload(
        "review_edit", state_from_view(view, savings_gbp="a lot"), user_id=REVIEWER,
        private_metadata=view["private_metadata"])))
    assert bad["response_action"] == "errors" and set(bad["errors"]) == {"savings_gbp"}

    assert await env.interact(view_submission_payload(
        "review_edit", state_from_view(view, supplier="Capita plc", contract_value_gbp="£50m", outcome="mixed"),
        user_id=REVIEWER, private_metadata=view["private_metadata"], view_id="V2")) == ""
    sub = await wait_until(lambda: (lambda s: s if s.supplier == "Capita plc" else None)(env.submission(reference)),
                           what="the edit")
    assert sub.contract_value_gbp == 50_000_000 and sub.outcome == "mixed" and sub.status == "received"
    audit = env.audit(reference)
    assert [a.action for a in audit] == ["edit"] and audit[0].actor == f"slack:{REVIEWER}"
    assert json.loads(audit[0].before or "{}") == {"supplier": "Capita", "contract_value_gbp": 45_000_000,
                                                   "outcome": "failure"}
    assert json.loads(audit[0].after or "{}") == {"supplier": "Capita plc", "contract_value_gbp": 50_000_000,
                                                  "outcome": "mixed"}
    after = await env.updated(summary)
    assert "Capita plc" in text_of(after["blocks"]) and "£50m" in text_of(after["blocks"])


# --------------------------------------------------------------------------- shortcut, safety, signatures


async def test_message_shortcut_prefills_the_form(env: Env) -> None:
    text = ("Project: Payroll\nPublic body: Kent County Council\nSupplier: Capita\nContract value: £45m\n"
            "The outsourcing failed badly &amp; costs went up, see <https://example.org/report|the report>.")
    assert await env.interact(message_action_payload("submit_as_evidence", text)) == ""
    view = (await wait_until(lambda: env.opened_views("evidence_submit"), what="the prefilled form"))[0]
    initial: dict[str, str] = {
        b["block_id"]: b["element"].get("initial_value") or (b["element"].get("initial_option") or {}).get("value")
        or "" for b in view["blocks"] if b["type"] == "input"}
    assert initial["project"] == "Payroll" and initial["public_body"] == "Kent County Council"
    assert initial["supplier"] == "Capita" and initial["contract_value"] == "45000000"
    assert initial["outcome"] == "failure"
    assert "failed badly & costs went up, see the report (https://example.org/report)" in initial["evidence"]


async def test_mentions_in_a_submission_never_reach_slack_unescaped(env: Env) -> None:
    hostile = "<!channel> <@U0REV1> <https://evil.example|bank>"
    reference, summary = await env.filed({**GOOD, "project": f"Payroll {hostile}",
                                          "evidence": f"It failed. {hostile} Please look."})
    await wait_until(lambda: env.dms_to(SUBMITTER), what="the receipt DM")
    assert "&lt;!channel&gt;" in text_of(summary["blocks"])
    await env.command(f"status {reference}", user=SUBMITTER)
    for call in env.slack.calls:
        sent = json.dumps(call.args, ensure_ascii=False)
        for raw in ("<!channel>", "<@U0REV1>", "<https://evil.example"):
            assert raw not in sent, (call.method, sent)
    status = await env.command(f"status {reference}", user=SUBMITTER)
    assert "<!channel>" not in status and "&lt;!channel&gt;" in status


async def raw_post(env: Env, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            env.url, data=body, headers={"Content-Type": FORM, **headers}) as res:
        return res.status


async def test_unsigned_forged_and_stale_requests_are_refused(env: Env) -> None:
    body = slash_command_body(text="help")
    assert (await post_signed(env.url, body, SECRET))[0] == 200
    assert (await post_signed(env.url, body, "wrong-secret"))[0] == 401
    assert (await post_signed(env.url, body, SECRET, headers={"X-Slack-Signature": "v0=" + "0" * 64}))[0] == 401
    assert await raw_post(env, body, {}) == 401
    ts_only = {k: v for k, v in sign(body, SECRET).items() if k == "X-Slack-Request-Timestamp"}
    assert await raw_post(env, body, ts_only) == 401
    assert (await post_signed(env.url, body, SECRET, timestamp=int(time.time()) - 360))[0] == 401
    # Nothing a refused request asked for happened.
    forged = interaction_body(view_submission_payload("evidence_submit", form_values(GOOD)))
    assert (await post_signed(env.url, forged, "wrong-secret"))[0] == 401
    await asyncio.sleep(0.2)
    assert env.submissions() == []


def test_modals_stay_within_slack_limits_whatever_the_text() -> None:
    from handlers.slack import modals
    from tests.support.slack_api import validate_view

    long = "word " * 2000
    prefill = {name: long for name in ("project", "public_body", "supplier", "period", "evidence")}
    views = [
        modals.submission_modal({**prefill, "outcome": "mixed", "confidential": "yes"}),
        modals.submission_modal(),
        modals.reject_modal("EV-000001", REVIEW, "1700000000.000100"),
        modals.needs_info_modal("EV-000001"),
        modals.edit_modal("EV-000001", {"title": long, "summary": long, "contract_value_gbp": 12_000_000_000,
                                        "confidential": True, "outcome": "success"}),
    ]
    for view in views:
        assert validate_view(view) == [], view["callback_id"]
    evidence = next(b for b in views[0]["blocks"] if b.get("block_id") == "evidence")["element"]
    assert len(evidence["initial_value"]) <= 3000
    assert modals.plain_from_message("<!here> <@U1|sam> <#C1|general> <https://a.example|a> &lt;b&gt; &amp;") == (
        "@here @sam #general a (https://a.example) <b> &")
